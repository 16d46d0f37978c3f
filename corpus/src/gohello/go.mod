module sysscan.invalid/gohello

go 1.19
