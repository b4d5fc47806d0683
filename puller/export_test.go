package puller

// Exported for the tests of package puller_test.
var (
	DefaultApp   = defaultApp
	JitterOffset = jitterOffset
)
