// Command stub stands in for the puller binary in the package that lintian
// checks: lintian's binary checks take minutes on the real 30 MB program,
// while the spec, unit, scripts and overrides are the same.
package main

func main() {}
