package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/galeproject/gale/backends/objstore"
)

// MiB is 1<<20 bytes.
const MiB = 1 << 20

// MinPartSize is S3's smallest multipart part (the last part excepted).
const MinPartSize = 5 * MiB

// maxListKeys is the largest page ListObjectsV2 returns.
const maxListKeys = 1000

// abortTimeout bounds the AbortMultipartUpload sent after a failed Put, which
// runs even when the Put's context is done.
const abortTimeout = 30 * time.Second

// ErrNoSuchBucket is returned (wrapped, with the bucket) when the bucket a
// store names does not exist.
var ErrNoSuchBucket = errors.New("aws: bucket does not exist")

// ErrCredentials is returned (wrapped) when the SDK found no usable AWS
// credentials, or S3 rejected them.
var ErrCredentials = errors.New("aws: no usable AWS credentials")

// S3Config configures S3 stores. The zero value is usable: empty fields
// take the SDK's standard sources or the defaults below.
type S3Config struct {
	// Region is the bucket's AWS region, e.g. "eu-west-1". Empty takes
	// the SDK's chain (AWS_REGION, the profile's region); with a custom
	// Endpoint and no region anywhere, "us-east-1".
	Region string
	// Endpoint is a custom S3 endpoint URL, e.g. "http://localhost:9000"
	// for MinIO. Empty uses AWS (or AWS_ENDPOINT_URL_S3 if set).
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key; most S3-compatible servers need it.
	PathStyle bool
	// Profile selects a profile of the shared config files; empty takes
	// AWS_PROFILE or "default".
	Profile string
	// PartSize is the multipart upload part size in bytes: objects larger
	// than one part upload in parts. Default 8 MiB, minimum 5 MiB. A Put
	// holds up to about Concurrency+1 parts in memory.
	PartSize int64
	// Concurrency is how many parts of one Put upload in parallel.
	// Default 4.
	Concurrency int
	// MaxAttempts is how many times one request is tried, retries
	// included. Default 0 keeps the SDK's (3, or AWS_MAX_ATTEMPTS).
	MaxAttempts int
	// Keys is how messages name these settings, up to the setting's own
	// name: "s3." (the default, the storage options s3.region, ...) or,
	// for the Lambda backend's staging store, "backends.aws.staging_s3.".
	Keys string
}

// keys returns c.Keys or its default.
func (c S3Config) keys() string {
	if c.Keys == "" {
		return "s3."
	}
	return c.Keys
}

// DefaultS3Config returns the defaults: an 8 MiB part size and 4 parts in
// flight, with region, endpoint and credentials from the SDK's chain.
func DefaultS3Config() S3Config {
	return S3Config{PartSize: 8 * MiB, Concurrency: 4}
}

// withDefaults fills zero fields with DefaultS3Config's.
func (c S3Config) withDefaults() S3Config {
	d := DefaultS3Config()
	if c.PartSize == 0 {
		c.PartSize = d.PartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	return c
}

// Validate reports every problem with c at once. Zero fields are valid
// (they take defaults).
func (c S3Config) Validate() error {
	var errs []error
	if c.PartSize != 0 && c.PartSize < MinPartSize {
		errs = append(errs, fmt.Errorf("%spart_size %d is below S3's minimum part of %d bytes (5 MiB)", c.keys(), c.PartSize, MinPartSize))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("%sconcurrency %d is negative (want >= 1, or 0 for the default 4)", c.keys(), c.Concurrency))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("%smax_attempts %d is negative (want >= 1, or 0 for the SDK default)", c.keys(), c.MaxAttempts))
	}
	if strings.ContainsAny(c.Region, " /:") {
		errs = append(errs, fmt.Errorf("%sregion %q is not a region name such as \"eu-west-1\"", c.keys(), c.Region))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%sendpoint %q is not an http:// or https:// URL", c.keys(), c.Endpoint))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws: invalid S3 config: %w", err)
	}
	return nil
}

// S3 is an objstore.Store on one bucket, with keys relative to a prefix. It
// is safe for concurrent use.
//
// Put streams through the SDK's upload manager: objects up to PartSize in
// one PutObject, larger ones as a multipart upload that is aborted if the
// Put fails or is cancelled, so no object or part stays behind. S3 makes an
// object visible only when its PutObject or CompleteMultipartUpload
// succeeds. List pages are ListObjectsV2 pages and page tokens are S3
// continuation tokens. Copy is server-side (CopyObject, objects up to 5 GiB).
//
// Keys written through S3 are validated with objstore.ValidateKey; reads
// accept any key, so objects written by other tools stay reachable.
type S3 struct {
	objstore.Location
	client *s3.Client
	up     *manager.Uploader
	bucket *string // the bucket, for the SDK's inputs
	hint   string  // how to fix the endpoint, for messages
	keys   string  // how the config names the settings (S3Config.Keys)

	bucketSeen atomic.Bool // the bucket answered once: skip HeadBucket
}

var (
	_ objstore.Store  = (*S3)(nil)
	_ objstore.Copier = (*S3)(nil)
)

// NewS3 returns a store on bucket whose keys are relative to prefix (which
// may be empty). It loads the SDK's configuration (credentials chain,
// region, endpoint) but sends no request.
func NewS3(ctx context.Context, cfg S3Config, bucket, prefix string) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	loc, err := objstore.NewLocation("aws", "s3", bucket, prefix)
	if err != nil {
		return nil, err
	}
	name := loc.String()

	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: %s: load AWS configuration (check AWS_PROFILE, AWS_CONFIG_FILE and the files they name): %w", name, err)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" && awsCfg.BaseEndpoint != nil {
		endpoint = *awsCfg.BaseEndpoint
	}
	if awsCfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("aws: %s: no AWS region: set AWS_REGION or %sregion in the config", name, cfg.keys())
		}
		// S3-compatible servers ignore the region, but requests are signed
		// with one.
		awsCfg.Region = "us-east-1"
	}
	awsCfg.Retryer = cutAnswerRetryer(awsCfg.Retryer)
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// A full GET validates the object's checksum where S3 stored one;
		// objects uploaded in parts have only per-part checksums. The SDK
		// would log each such skip to stderr.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	// The upload manager is deprecated in favour of feature/s3/transfermanager,
	// which is not yet at a stable version; the manager is the SDK's
	// maintained, well-tested multipart uploader until then.
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = cfg.PartSize
		u.Concurrency = cfg.Concurrency
		// Put aborts a failed upload itself, with a context that outlives
		// a cancelled Put; the manager's abort would reuse the cancelled one.
		u.LeavePartsOnError = true
	})
	hint := "check AWS_REGION and the network"
	if endpoint != "" {
		hint = fmt.Sprintf("check that the endpoint %s is up (%sendpoint or AWS_ENDPOINT_URL_S3)", endpoint, cfg.keys())
	}
	return &S3{Location: loc, client: client, up: up, bucket: sdkaws.String(bucket), hint: hint, keys: cfg.keys()}, nil
}

// Client returns the underlying SDK client, for operations beyond Store.
func (s *S3) Client() *s3.Client { return s.client }

// Get implements objstore.Store with a ranged GetObject.
func (s *S3) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	k, err := s.GetKey(key, off)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return objstore.EmptyRead(ctx, s, key)
	}
	in := &s3.GetObjectInput{Bucket: s.bucket, Key: &k}
	if rng := objstore.ByteRange(off, n); rng != "" {
		in.Range = &rng
	}
	var opts []func(*s3.Options)
	if in.Range != nil {
		// A whole-object checksum cannot validate a part of the object.
		opts = append(opts, func(o *s3.Options) { o.ResponseChecksumValidation = sdkaws.ResponseChecksumValidationWhenRequired })
	}
	out, err := s.client.GetObject(ctx, in, opts...)
	if err != nil {
		if httpStatus(err) == 416 {
			// The range starts at or past the end of an existing object
			// (a missing one is a 404): the truncated range is empty.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.fail(ctx, "get", s.Name(key), err)
	}
	s.bucketSeen.Store(true)
	return out.Body, nil
}

// Put implements objstore.Store through the upload manager.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	k, err := s.WriteKey("put", key)
	if err != nil {
		return err
	}
	_, err = s.up.Upload(ctx, &s3.PutObjectInput{Bucket: s.bucket, Key: &k, Body: r})
	if err == nil {
		s.bucketSeen.Store(true)
		return nil
	}
	var mu manager.MultiUploadFailure
	if errors.As(err, &mu) && mu.UploadID() != "" {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		id := mu.UploadID()
		_, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: s.bucket, Key: &k, UploadId: &id})
		if aerr != nil && !isCode(aerr, "NoSuchUpload") {
			err = errors.Join(err, fmt.Errorf("abort multipart upload %s failed, its parts stay stored until a lifecycle rule (AbortIncompleteMultipartUpload) removes them: %w", id, aerr))
		}
	}
	return s.fail(ctx, "put", s.Name(key), err)
}

// Stat implements objstore.Store with HeadObject.
func (s *S3) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	k, err := s.ReadKey("stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s.bucket, Key: &k})
	if err != nil {
		return objstore.ObjectInfo{}, s.fail(ctx, "stat", s.Name(key), err)
	}
	s.bucketSeen.Store(true)
	return objstore.ObjectInfo{Key: key, Size: sdkaws.ToInt64(out.ContentLength), ModTime: sdkaws.ToTime(out.LastModified),
		ETag: strings.Trim(sdkaws.ToString(out.ETag), `"`)}, nil
}

// Delete implements objstore.Store with DeleteObject, which S3 makes
// idempotent.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.ReadKey("delete", key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: s.bucket, Key: &k}); err != nil {
		if err := s.fail(ctx, "delete", s.Name(key), err); !errors.Is(err, objstore.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Copy implements objstore.Copier with CopyObject, server-side. S3 copies
// objects up to 5 GiB this way.
func (s *S3) Copy(ctx context.Context, from, to string) error {
	kf, err := s.ReadKey("copy", from)
	if err != nil {
		return err
	}
	kt, err := s.WriteKey("copy", to)
	if err != nil {
		return err
	}
	src := url.PathEscape(s.Bucket()) + "/" + escapeKey(kf)
	if _, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: s.bucket, Key: &kt, CopySource: &src}); err != nil {
		return s.fail(ctx, "copy", s.Name(from)+" to "+s.Name(to), err)
	}
	return nil
}

// escapeKey URL-encodes each segment of a key for x-amz-copy-source.
func escapeKey(k string) string {
	segs := strings.Split(k, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// List implements objstore.Store with ListObjectsV2. Limits above S3's
// page of 1000 return at most 1000 objects.
func (s *S3) List(ctx context.Context, prefix, token string, limit int) (objstore.ListPage, error) {
	if limit <= 0 || limit > maxListKeys {
		limit = maxListKeys
	}
	in := &s3.ListObjectsV2Input{
		Bucket:  s.bucket,
		Prefix:  sdkaws.String(s.Prefix() + prefix),
		MaxKeys: sdkaws.Int32(int32(limit)),
	}
	if token != "" {
		in.ContinuationToken = &token
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return objstore.ListPage{}, s.fail(ctx, "list", s.Name(prefix+"*"), err)
	}
	s.bucketSeen.Store(true)
	page := objstore.ListPage{Objects: make([]objstore.ObjectInfo, 0, len(out.Contents))}
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, objstore.ObjectInfo{
			Key:     s.StoreKey(sdkaws.ToString(o.Key)),
			Size:    sdkaws.ToInt64(o.Size),
			ModTime: sdkaws.ToTime(o.LastModified),
			ETag:    strings.Trim(sdkaws.ToString(o.ETag), `"`),
		})
	}
	if sdkaws.ToBool(out.IsTruncated) {
		page.Next = sdkaws.ToString(out.NextContinuationToken)
		if page.Next == "" {
			return objstore.ListPage{}, fmt.Errorf("aws: list %s: truncated page without a continuation token", s.Name(prefix+"*"))
		}
	}
	return page, nil
}

// fail turns an SDK error into a Gale error that names the object and, for
// configuration problems, says how to fix them.
func (s *S3) fail(ctx context.Context, op, name string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("aws: %s %s: %w", op, name, err)
	}
	var signErr *v4.SigningError
	// The SDK has no error type for a failed credential lookup before
	// signing; its messages are stable across versions.
	noCreds := errors.As(err, &signErr) || strings.Contains(err.Error(), "get identity: ") ||
		strings.Contains(err.Error(), "failed to retrieve credentials") ||
		strings.Contains(err.Error(), "failed to refresh cached credentials")
	switch {
	case isCode(err, "NoSuchBucket"):
		return fmt.Errorf("aws: %s %s: %w: %q (create it, or fix the bucket in the URL and the region): %w", op, name, ErrNoSuchBucket, s.Bucket(), err)
	case isCode(err, "NoSuchKey"):
		return fmt.Errorf("aws: %s %s: %w", op, name, objstore.ErrNotExist)
	case httpStatus(err) == 404 || isCode(err, "NotFound"):
		// HEAD responses have no body, so a missing bucket and a missing
		// key look alike: ask the bucket once.
		if !s.bucketSeen.Load() {
			_, herr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: s.bucket})
			if herr == nil {
				s.bucketSeen.Store(true)
			} else if httpStatus(herr) == 404 || isCode(herr, "NotFound") || isCode(herr, "NoSuchBucket") {
				return fmt.Errorf("aws: %s %s: %w: %q (create it, or fix the bucket in the URL and the region)", op, name, ErrNoSuchBucket, s.Bucket())
			}
		}
		return fmt.Errorf("aws: %s %s: %w", op, name, objstore.ErrNotExist)
	case isCode(err, "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
		return fmt.Errorf("aws: %s %s: %w: S3 rejected them (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the profile): %w", op, name, ErrCredentials, err)
	case isCode(err, "AccessDenied", "AllAccessDisabled"):
		return fmt.Errorf("aws: %s %s: access denied (grant these credentials s3:%s on the bucket, or check the bucket's policy): %w", op, name, s3Action(op), err)
	case isCode(err, "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
		return fmt.Errorf("aws: %s %s: the bucket is in another region (set AWS_REGION or %sregion in the config to the bucket's region): %w", op, name, s.keys, err)
	case noCreds:
		return fmt.Errorf("aws: %s %s: %w (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role): %w", op, name, ErrCredentials, err)
	case isNetErr(err):
		return fmt.Errorf("aws: %s %s: cannot reach S3 (%s): %w", op, name, s.hint, err)
	}
	return fmt.Errorf("aws: %s %s: %w", op, name, err)
}

func s3Action(op string) string {
	switch op {
	case "get", "copy":
		return "GetObject"
	case "put":
		return "PutObject"
	case "stat":
		return "GetObject (HeadObject)"
	case "delete":
		return "DeleteObject"
	case "list":
		return "ListBucket"
	}
	return op
}

// isCode reports whether err is an S3 API error with one of codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

// httpStatus returns the HTTP status of the response behind err, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNetErr(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns)
}

// S3Opener returns an objstore.Opener for s3://bucket/prefix URLs with cfg.
// The URL's query may override cfg: region, endpoint, path_style (true or
// false) and profile, e.g.
// s3://bucket/prefix?endpoint=http://localhost:9000&path_style=true.
func S3Opener(cfg S3Config) objstore.Opener {
	return func(ctx context.Context, u *url.URL) (objstore.Store, error) {
		if u.Host == "" {
			return nil, errors.New("aws: s3 URL has no bucket (write s3://bucket/prefix)")
		}
		c := cfg
		for k, v := range u.Query() {
			val := v[len(v)-1]
			switch k {
			case "region":
				c.Region = val
			case "endpoint":
				c.Endpoint = val
			case "profile":
				c.Profile = val
			case "path_style":
				b, err := strconv.ParseBool(val)
				if err != nil {
					return nil, fmt.Errorf("aws: s3 URL: path_style=%q is not true or false", val)
				}
				c.PathStyle = b
			default:
				return nil, fmt.Errorf("aws: s3 URL: unknown parameter %q (known: region, endpoint, path_style, profile)", k)
			}
		}
		return NewS3(ctx, c, u.Host, strings.TrimPrefix(u.Path, "/"))
	}
}

// cutAnswerRetryer returns the SDK retryer (base's, or the standard one)
// that also retries a request whose answer came cut short: a response
// body that ends before its Content-Length (a connection reset
// mid-transfer) fails to deserialize with io.ErrUnexpectedEOF, which the
// SDK's retryer does not retry. Every S3 request Gale sends may be sent
// again: a CopyObject, PutObject or DeleteObject whose answer was lost
// has the same effect twice; reads have none. (Object bodies that GetObject
// streams are checked by Get's reader, not here.)
func cutAnswerRetryer(base func() sdkaws.Retryer) func() sdkaws.Retryer {
	return func() sdkaws.Retryer {
		var r sdkaws.Retryer
		if base != nil {
			r = base()
		} else {
			r = retry.NewStandard()
		}
		v2, ok := r.(sdkaws.RetryerV2)
		if !ok {
			return r
		}
		return cutRetryer{v2}
	}
}

// cutRetryer is a retryer that retries cut answers (cutAnswerRetryer).
type cutRetryer struct{ sdkaws.RetryerV2 }

// IsErrorRetryable reports err retryable if its answer's body was cut,
// else asks the retryer it wraps.
func (r cutRetryer) IsErrorRetryable(err error) bool {
	var de *smithy.DeserializationError
	if errors.As(err, &de) && errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return r.RetryerV2.IsErrorRetryable(err)
}
