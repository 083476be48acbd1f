// Package archtest holds Gale's architecture test: it lists every package
// of both modules with `go list` and fails on any import outside the rules
// the packages' doc comments state ("This package may import ...",
// "Imports: ..."). The rules are written once, as a table in
// arch_test.go, and each entry names the doc comment it mirrors; a change
// to a package's imports changes both, in one commit.
//
// The package has no code of its own; it exists for its test.
package archtest
