package aws

// WithDirectLimit returns o with the direct-upload limit lowered from
// MaxDirectUploadBytes to n bytes, so that tests of the limit need not
// build 50 MiB packages.
func WithDirectLimit(o DeployOptions, n int) DeployOptions {
	o.directLimit = n
	return o
}

// CodeKey is codeKey: the content-addressed key of a package.
var CodeKey = codeKey
