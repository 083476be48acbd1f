package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/galeproject/gale/backends/objstore"
)

// ErrPackageTooLarge is returned (wrapped, with the sizes, the limit and
// the fix) by Deploy for a package Lambda would refuse: over
// MaxDirectUploadBytes zipped without a code location, or
// MaxUnzippedBytes or more unzipped.
var ErrPackageTooLarge = errors.New("aws: deployment package too large")

// checkPackageSize refuses, before any request, a package Lambda would
// refuse for its size.
func checkPackageSize(function string, zipFile []byte, opts DeployOptions) error {
	zr, err := zip.NewReader(bytes.NewReader(zipFile), int64(len(zipFile)))
	if err != nil {
		return fmt.Errorf("aws: deploy %s: the package is not a zip archive (make it with aws.BootstrapZip or gale deploy --zip-only): %w", function, err)
	}
	// Lambda checks the sizes the zip's central directory declares, as
	// here; extracting would not tell more, since a wrong declared size
	// makes the archive invalid.
	var unzipped uint64
	for _, f := range zr.File {
		unzipped += f.UncompressedSize64
	}
	if unzipped >= MaxUnzippedBytes {
		return fmt.Errorf("aws: deploy %s: %w: it unzips to %d bytes (%.1f MiB); Lambda requires less than %d bytes (250 MiB) unzipped, layers included, whether the zip goes inline or through S3: make the binary smaller (build it with -ldflags='-s -w' to strip it, drop unused dependencies)",
			function, ErrPackageTooLarge, unzipped, float64(unzipped)/MiB, MaxUnzippedBytes)
	}
	limit := MaxDirectUploadBytes
	if opts.directLimit > 0 {
		limit = opts.directLimit
	}
	if opts.Code == "" && len(zipFile) > limit {
		return fmt.Errorf("aws: deploy %s: %w: the zip is %d bytes (%.1f MiB), over the %d bytes (50 MiB, less room for the request) Lambda takes in a direct upload: set code: s3://BUCKET/PREFIX in the backends.aws section, or pass --code s3://BUCKET/PREFIX, to deploy it through S3 from a bucket in the function's region; or make the binary smaller (build it with -ldflags='-s -w' to strip it)",
			function, ErrPackageTooLarge, len(zipFile), float64(len(zipFile))/MiB, limit)
	}
	return nil
}

// codeStore is the code location: the S3 store the packages go to.
type codeStore struct {
	*S3
	region string // the function's
}

// openCodeStore opens opts.Code's store for a function in region. A
// bucket in another region than the function's is refused up front when
// both are AWS's (a custom endpoint is a stand-in, whose regions mean
// nothing).
func openCodeStore(ctx context.Context, cfg LambdaConfig, region string, opts DeployOptions) (*codeStore, error) {
	bucket, prefix, _ := parseS3URL(opts.Code) // checked by Validate
	c := opts.CodeS3
	if c.Region == "" {
		c.Region = region
	}
	if c.Keys == "" {
		c.Keys = "backends.aws.code_s3."
	}
	if c.Region != region && cfg.Endpoint == "" && c.Endpoint == "" {
		return nil, fmt.Errorf("aws: deploy %s: the code location %s is configured in region %s, but the function is in %s: Lambda takes code only from a bucket in the function's region (use a bucket in %s, or drop code_s3.region)",
			cfg.Function, opts.Code, c.Region, region, region)
	}
	s, err := NewS3(ctx, c, bucket, prefix)
	if err != nil {
		return nil, fmt.Errorf("aws: deploy %s: code location: %w", cfg.Function, err)
	}
	return &codeStore{S3: s, region: region}, nil
}

// codeKey is the package's content-addressed key: the function's name and the
// package's SHA-256, so that each package has its own object and the same
// package always the same one.
func codeKey(function string, sum [32]byte) string {
	return functionName(function) + "-" + hex.EncodeToString(sum[:]) + ".zip"
}

// functionName returns the name in a function name, partial ARN
// (ACCOUNT:function:NAME) or ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME),
// without a version or alias suffix.
func functionName(fn string) string {
	parts := strings.Split(fn, ":")
	for i, p := range parts {
		if p == "function" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return parts[0]
}

// put uploads the package under its content-addressed key unless an
// object of the package's size is already there, and returns the key
// (relative to the store) and whether it uploaded. S3 makes the object
// visible only once its upload completed (S3.Put), so a key that exists
// holds a whole package.
func (c *codeStore) put(ctx context.Context, function string, zipFile []byte, sum [32]byte) (string, bool, error) {
	key := codeKey(function, sum)
	info, err := c.Stat(ctx, key)
	switch {
	case err == nil && info.Size == int64(len(zipFile)):
		return key, false, nil
	case err == nil, errors.Is(err, objstore.ErrNotExist):
	case httpStatus(err) == 403:
		// Without s3:ListBucket, S3 answers a missing object with 403
		// rather than 404: upload, and let the upload say whether the
		// credentials may write.
	default:
		return "", false, fmt.Errorf("code location: %w", c.regionHint(err))
	}
	if err := c.Put(ctx, key, bytes.NewReader(zipFile)); err != nil {
		return "", false, fmt.Errorf("uploading the package to the code location: %w", c.regionHint(err))
	}
	return key, true, nil
}

// regionHint says what to do when S3 answers that the bucket is in another
// region: Lambda takes code only from its own region, so the fix is a
// bucket there, not another client region.
func (c *codeStore) regionHint(err error) error {
	if !isCode(err, "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException") && httpStatus(err) != 301 {
		return err
	}
	return fmt.Errorf("the bucket %q is not in the function's region %s, and Lambda takes code only from a bucket in its own region (use a bucket in %s): %w",
		c.Bucket(), c.region, c.region, err)
}

// url returns the s3://bucket/key URL of a key.
func (c *codeStore) url(key string) string { return c.Name(key) }

// hint returns err with the fix if it is a Lambda error about reading the
// package from S3, else nil.
func (c *codeStore) hint(err error, region string) error {
	msg := err.Error()
	if !strings.Contains(msg, "S3 Error") && !strings.Contains(msg, "by S3") && !strings.Contains(msg, "S3 bucket") {
		return nil
	}
	return fmt.Errorf("Lambda could not read the package from the code location %s (Lambda reads it with the deploying credentials, which need s3:GetObject there; and the bucket must be in the function's region, %s): %w",
		c.String(), region, err)
}
