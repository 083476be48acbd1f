package ibm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam"
	"github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/IBM/ibm-cos-sdk-go/service/s3/s3manager"

	"github.com/galeproject/gale/backends/objstore"
)

// DefaultIAMEndpoint is IBM Cloud's IAM token endpoint, where an API key is
// exchanged for the bearer tokens COS requests carry.
const DefaultIAMEndpoint = "https://iam.cloud.ibm.com/identity/token"

// ErrNoSuchBucket is returned (wrapped, with the bucket) when a COS bucket
// does not exist.
var ErrNoSuchBucket = errors.New("ibm: COS bucket does not exist")

// COSConfig configures IBM Cloud Object Storage stores. Credentials are an
// IAM API key (with the service instance id), or HMAC keys; with neither,
// the SDK's chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then
// ~/.aws/credentials) applies.
type COSConfig struct {
	// Endpoint is the COS endpoint URL, e.g.
	// "https://s3.us-south.cloud-object-storage.appdomain.cloud".
	// Required.
	Endpoint string
	// Region signs requests; COS accepts "us-geo" and the regional names.
	// Default "us-geo".
	Region string
	// APIKey and ServiceInstanceID authenticate through IAM; AuthEndpoint
	// defaults to DefaultIAMEndpoint.
	APIKey, ServiceInstanceID, AuthEndpoint string
	// AccessKeyID and SecretAccessKey are HMAC credentials.
	AccessKeyID, SecretAccessKey string
	// PathStyle addresses buckets as endpoint/bucket. Default false
	// (virtual hosts, as COS's public endpoints serve them); loopback S3
	// servers need true.
	PathStyle bool
	// PartSize is the multipart part size in bytes. Default 8 MiB, at
	// least 5 MiB.
	PartSize int64
	// Concurrency is how many parts of one Put upload at once. Default 4.
	Concurrency int
}

// Validate reports every problem with c at once.
func (c COSConfig) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("cos.endpoint is required, e.g. https://s3.us-south.cloud-object-storage.appdomain.cloud"))
	} else if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("cos.endpoint %q is not an http:// or https:// URL", c.Endpoint))
	}
	if c.APIKey != "" && (c.AccessKeyID != "" || c.SecretAccessKey != "") {
		errs = append(errs, errors.New("cos: give either cos.api_key or HMAC keys (cos.access_key_id, cos.secret_access_key), not both"))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("cos: HMAC credentials need both cos.access_key_id and cos.secret_access_key"))
	}
	if c.PartSize != 0 && c.PartSize < s3manager.MinUploadPartSize {
		errs = append(errs, fmt.Errorf("cos.part_size %d is below the 5 MiB minimum part", c.PartSize))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("cos.concurrency %d is negative", c.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ibm: invalid COS config: %w", err)
	}
	return nil
}

// COS is an objstore.Store on one COS bucket, keys relative to a prefix,
// through ibm-cos-sdk-go. It is safe for concurrent use. A Put is one
// PutObject or a multipart upload that the upload manager aborts on
// failure, so COS never shows a partial object.
type COS struct {
	objstore.Location
	client *s3.S3
	up     *s3manager.Uploader
	bucket *string // the bucket, for the SDK's inputs
}

var (
	_ objstore.Store  = (*COS)(nil)
	_ objstore.Copier = (*COS)(nil)
)

// NewCOS returns a store on bucket under prefix. It sends no request.
func NewCOS(cfg COSConfig, bucket, prefix string) (*COS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, err := objstore.NewLocation("ibm", "cos", bucket, prefix)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-geo"
	}
	ac := aws.NewConfig().WithEndpoint(cfg.Endpoint).WithRegion(region).WithS3ForcePathStyle(cfg.PathStyle)
	switch {
	case cfg.APIKey != "":
		auth := cfg.AuthEndpoint
		if auth == "" {
			auth = DefaultIAMEndpoint
		}
		ac = ac.WithCredentials(ibmiam.NewStaticCredentials(aws.NewConfig(), auth, cfg.APIKey, cfg.ServiceInstanceID))
	case cfg.AccessKeyID != "":
		ac = ac.WithCredentials(credentials.NewStaticCredentials(cfg.AccessKeyID, cfg.SecretAccessKey, ""))
	}
	sess, err := session.NewSession(ac)
	if err != nil {
		return nil, fmt.Errorf("ibm: COS session: %w", err)
	}
	client := s3.New(sess)
	up := s3manager.NewUploaderWithClient(client, func(u *s3manager.Uploader) {
		if cfg.PartSize > 0 {
			u.PartSize = cfg.PartSize
		} else {
			u.PartSize = 8 << 20
		}
		if cfg.Concurrency > 0 {
			u.Concurrency = cfg.Concurrency
		} else {
			u.Concurrency = 4
		}
	})
	return &COS{Location: loc, client: client, up: up, bucket: aws.String(bucket)}, nil
}

// Get implements objstore.Store with a ranged GetObject.
func (s *COS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
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
	out, err := s.client.GetObjectWithContext(ctx, in)
	if err != nil {
		if statusOf(err) == 416 {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.fail("get", key, err)
	}
	return out.Body, nil
}

// Put implements objstore.Store through the upload manager.
func (s *COS) Put(ctx context.Context, key string, r io.Reader) error {
	k, err := s.WriteKey("put", key)
	if err != nil {
		return err
	}
	if _, err := s.up.UploadWithContext(ctx, &s3manager.UploadInput{Bucket: s.bucket, Key: &k, Body: r}); err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// Stat implements objstore.Store with HeadObject.
func (s *COS) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	k, err := s.ReadKey("stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	out, err := s.client.HeadObjectWithContext(ctx, &s3.HeadObjectInput{Bucket: s.bucket, Key: &k})
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("stat", key, err)
	}
	return objstore.ObjectInfo{Key: key, Size: aws.Int64Value(out.ContentLength), ModTime: aws.TimeValue(out.LastModified),
		ETag: strings.Trim(aws.StringValue(out.ETag), `"`)}, nil
}

// Delete implements objstore.Store; deleting a missing key is no error.
func (s *COS) Delete(ctx context.Context, key string) error {
	k, err := s.ReadKey("delete", key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObjectWithContext(ctx, &s3.DeleteObjectInput{Bucket: s.bucket, Key: &k}); err != nil {
		if err := s.fail("delete", key, err); !errors.Is(err, objstore.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Copy implements objstore.Copier with a server-side CopyObject.
func (s *COS) Copy(ctx context.Context, from, to string) error {
	kf, err := s.ReadKey("copy", from)
	if err != nil {
		return err
	}
	kt, err := s.WriteKey("copy", to)
	if err != nil {
		return err
	}
	segs := strings.Split(kf, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	src := url.PathEscape(s.Bucket()) + "/" + strings.Join(segs, "/")
	if _, err := s.client.CopyObjectWithContext(ctx, &s3.CopyObjectInput{Bucket: s.bucket, Key: &kt, CopySource: &src}); err != nil {
		return s.fail("copy", from, err)
	}
	return nil
}

// List implements objstore.Store with ListObjectsV2 (pages of up to 1000).
func (s *COS) List(ctx context.Context, prefix, token string, limit int) (objstore.ListPage, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	in := &s3.ListObjectsV2Input{Bucket: s.bucket, Prefix: aws.String(s.Prefix() + prefix), MaxKeys: aws.Int64(int64(limit))}
	if token != "" {
		in.ContinuationToken = &token
	}
	out, err := s.client.ListObjectsV2WithContext(ctx, in)
	if err != nil {
		return objstore.ListPage{}, s.fail("list", prefix+"*", err)
	}
	page := objstore.ListPage{Objects: make([]objstore.ObjectInfo, 0, len(out.Contents))}
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, objstore.ObjectInfo{
			Key: s.StoreKey(aws.StringValue(o.Key)), Size: aws.Int64Value(o.Size), ModTime: aws.TimeValue(o.LastModified),
			ETag: strings.Trim(aws.StringValue(o.ETag), `"`),
		})
	}
	if aws.BoolValue(out.IsTruncated) {
		page.Next = aws.StringValue(out.NextContinuationToken)
		if page.Next == "" {
			return objstore.ListPage{}, fmt.Errorf("ibm: list %s: truncated page without a continuation token", s.Name(prefix+"*"))
		}
	}
	return page, nil
}

// fail maps SDK errors: missing objects to objstore.ErrNotExist, a missing
// bucket to ErrNoSuchBucket, rejected credentials to a message with the fix.
func (s *COS) fail(op, key string, err error) error {
	code := ""
	var ae awserr.Error
	if errors.As(err, &ae) {
		code = ae.Code()
	}
	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("ibm: %s %s: %w: %q (create it, or fix the bucket and cos.endpoint)", op, s.Name(key), ErrNoSuchBucket, s.Bucket())
	case code == "NoSuchKey" || code == "NotFound" || statusOf(err) == 404:
		return fmt.Errorf("ibm: %s %s: %w", op, s.Name(key), objstore.ErrNotExist)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "AccessDenied" || statusOf(err) == 401 || statusOf(err) == 403:
		return fmt.Errorf("ibm: %s %s: COS refused the credentials (check cos.api_key and cos.service_instance_id, or the HMAC keys cos.access_key_id and cos.secret_access_key): %w", op, s.Name(key), err)
	}
	return fmt.Errorf("ibm: %s %s: %w", op, s.Name(key), err)
}

// statusOf returns the HTTP status behind an SDK error, or 0.
func statusOf(err error) int {
	var rf awserr.RequestFailure
	if errors.As(err, &rf) {
		return rf.StatusCode()
	}
	return 0
}

// COSOpener returns an objstore.Opener for cos://bucket/prefix URLs.
func COSOpener(cfg COSConfig) objstore.Opener {
	return func(_ context.Context, u *url.URL) (objstore.Store, error) {
		if u.Host == "" {
			return nil, errors.New("ibm: cos URL has no bucket (write cos://bucket/prefix)")
		}
		if len(u.Query()) > 0 {
			return nil, fmt.Errorf("ibm: cos URL %s: parameters are not accepted; set cos.* store options", u.Redacted())
		}
		return NewCOS(cfg, u.Host, strings.TrimPrefix(u.Path, "/"))
	}
}
