// verify-go: credsmith's registry hash strings checked with Go's own libraries
// (golang.org/x/crypto and the standard library), built by tests/cluster/build.sh.
module github.com/credsmith/credsmith/tests/verify-go

go 1.26.0

require golang.org/x/crypto v0.58.0

require golang.org/x/sys v0.49.0 // indirect
