module rbs.invalid/pause

go 1.26
