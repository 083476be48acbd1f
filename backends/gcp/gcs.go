package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/galeproject/gale/backends/objstore"
)

// ErrNoSuchBucket is returned (wrapped, with the bucket) when the bucket a
// store names does not exist.
var ErrNoSuchBucket = errors.New("gcp: bucket does not exist")

// defaultChunkSize is GCSConfig.ChunkSize's default.
const defaultChunkSize = 8 << 20

// maxListPage is the largest page the JSON API's objects.list returns.
const maxListPage = 1000

// GCSConfig configures GCS stores. The zero value uses Google Cloud
// Storage with Application Default Credentials.
type GCSConfig struct {
	// Endpoint is a custom JSON API endpoint, e.g.
	// "http://127.0.0.1:4443/storage/v1/" for fake-gcs-server; such an
	// endpoint gets no credentials. Empty: Google Cloud Storage (or
	// STORAGE_EMULATOR_HOST if set, which the client library honours).
	Endpoint string
	// CredentialsFile is a service-account key file; empty uses
	// Application Default Credentials.
	CredentialsFile string
	// ChunkSize is the resumable-upload chunk in bytes: Put buffers that
	// much (allocating a buffer of that size per Put) before each upload
	// request, and objects up to one chunk go in a single request. Default
	// 8 MiB (the S3 store's part size; the client library's is 16 MiB);
	// must be a multiple of 256 KiB.
	ChunkSize int
}

// Validate reports every problem with c at once.
func (c GCSConfig) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("gs.endpoint %q is not an http:// or https:// URL (for fake-gcs-server: http://HOST:PORT/storage/v1/)", c.Endpoint))
		}
	}
	if c.ChunkSize < 0 || c.ChunkSize%(256<<10) != 0 {
		errs = append(errs, fmt.Errorf("gs.chunk_size %d is not a non-negative multiple of 256 KiB", c.ChunkSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gcp: invalid GCS config: %w", err)
	}
	return nil
}

// GCS is an objstore.Store on one bucket, with keys relative to a prefix.
// It is safe for concurrent use.
//
// Put is a resumable upload (a single request for objects up to one
// chunk): GCS makes the object visible only when the upload is finalized
// by Close, and a failed or cancelled Put cancels the upload, so no
// partial object is ever visible. Get is a ranged read through the JSON
// API; List pages are objects.list pages with their page tokens; Copy is
// server-side (objects.rewrite).
//
// Keys written through GCS are validated with objstore.ValidateKey; reads
// accept any key.
type GCS struct {
	objstore.Location
	client  *storage.Client
	bkt     *storage.BucketHandle
	chunk   int
	hint    string
	ownsCli bool

	bucketSeen atomic.Bool
}

var (
	_ objstore.Store  = (*GCS)(nil)
	_ objstore.Copier = (*GCS)(nil)
)

// NewGCS returns a store on bucket whose keys are relative to prefix
// (which may be empty). It creates a client but sends no request.
func NewGCS(ctx context.Context, cfg GCSConfig, bucket, prefix string) (*GCS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []option.ClientOption{storage.WithJSONReads()}
	hint := "check the network and the bucket's location"
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint), option.WithoutAuthentication())
		hint = fmt.Sprintf("check that the endpoint %s is up (gs.endpoint)", cfg.Endpoint)
	} else if cfg.CredentialsFile != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcp: gs://%s: creating the storage client (check GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`): %w", bucket, err)
	}
	chunk := cfg.ChunkSize
	if chunk == 0 {
		chunk = defaultChunkSize
	}
	s, err := newGCS(client, bucket, prefix, chunk)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.hint, s.ownsCli = hint, true
	return s, nil
}

// NewGCSFromClient returns a store on bucket/prefix that uses client (for
// instance fake-gcs-server's in-process fakestorage.Server.Client()). The
// caller keeps ownership of client.
func NewGCSFromClient(client *storage.Client, bucket, prefix string) (*GCS, error) {
	return newGCS(client, bucket, prefix, 0)
}

func newGCS(client *storage.Client, bucket, prefix string, chunk int) (*GCS, error) {
	loc, err := objstore.NewLocation("gcp", "gs", bucket, prefix)
	if err != nil {
		return nil, err
	}
	return &GCS{Location: loc, client: client, bkt: client.Bucket(bucket), chunk: chunk, hint: "check the network"}, nil
}

// Close releases the client if the store created it.
func (s *GCS) Close() error {
	if s.ownsCli {
		return s.client.Close()
	}
	return nil
}

// Client returns the underlying client, for operations beyond Store.
func (s *GCS) Client() *storage.Client { return s.client }

// Get implements objstore.Store with a ranged read.
func (s *GCS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	k, err := s.GetKey(key, off)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return objstore.EmptyRead(ctx, s, key)
	}
	if n < 0 {
		n = -1
	}
	r, err := s.bkt.Object(k).NewRangeReader(ctx, off, n)
	if err != nil {
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			// The range starts at or past the end of an existing object.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.fail(ctx, "get", s.Name(key), err)
	}
	s.bucketSeen.Store(true)
	return r, nil
}

// Put implements objstore.Store with a resumable upload.
func (s *GCS) Put(ctx context.Context, key string, r io.Reader) error {
	k, err := s.WriteKey("put", key)
	if err != nil {
		return err
	}
	// Cancelling the writer's context is how an upload is abandoned: the
	// object is created only by a successful Close.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.bkt.Object(k).NewWriter(wctx)
	if s.chunk > 0 {
		w.ChunkSize = s.chunk
	}
	w.ContentType = "application/octet-stream"
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		w.Close()
		if ctx.Err() != nil {
			return fmt.Errorf("gcp: put %s: %w", s.Name(key), ctx.Err())
		}
		return s.fail(ctx, "put", s.Name(key), err)
	}
	if err := w.Close(); err != nil {
		return s.fail(ctx, "put", s.Name(key), err)
	}
	s.bucketSeen.Store(true)
	return nil
}

// Stat implements objstore.Store.
func (s *GCS) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	k, err := s.ReadKey("stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	a, err := s.bkt.Object(k).Attrs(ctx)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail(ctx, "stat", s.Name(key), err)
	}
	s.bucketSeen.Store(true)
	return objstore.ObjectInfo{Key: key, Size: a.Size, ModTime: a.Updated, ETag: strconv.FormatInt(a.Generation, 10)}, nil
}

// Delete implements objstore.Store; a missing key is not an error.
func (s *GCS) Delete(ctx context.Context, key string) error {
	k, err := s.ReadKey("delete", key)
	if err != nil {
		return err
	}
	if err := s.bkt.Object(k).Delete(ctx); err != nil {
		if err := s.fail(ctx, "delete", s.Name(key), err); !errors.Is(err, objstore.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Copy implements objstore.Copier server-side.
func (s *GCS) Copy(ctx context.Context, from, to string) error {
	kf, err := s.ReadKey("copy", from)
	if err != nil {
		return err
	}
	kt, err := s.WriteKey("copy", to)
	if err != nil {
		return err
	}
	if _, err := s.bkt.Object(kt).CopierFrom(s.bkt.Object(kf)).Run(ctx); err != nil {
		return s.fail(ctx, "copy", s.Name(from)+" to "+s.Name(to), err)
	}
	return nil
}

// List implements objstore.Store with objects.list. Limits above 1000
// return at most 1000 objects.
func (s *GCS) List(ctx context.Context, prefix, token string, limit int) (objstore.ListPage, error) {
	if limit <= 0 || limit > maxListPage {
		limit = maxListPage
	}
	q := &storage.Query{Prefix: s.Prefix() + prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated"}); err != nil {
		return objstore.ListPage{}, fmt.Errorf("gcp: list %s: %w", s.Name(prefix+"*"), err)
	}
	var attrs []*storage.ObjectAttrs
	next, err := iterator.NewPager(s.bkt.Objects(ctx, q), limit, token).NextPage(&attrs)
	if err != nil {
		return objstore.ListPage{}, s.fail(ctx, "list", s.Name(prefix+"*"), err)
	}
	s.bucketSeen.Store(true)
	page := objstore.ListPage{Objects: make([]objstore.ObjectInfo, 0, len(attrs)), Next: next}
	for _, a := range attrs {
		page.Objects = append(page.Objects, objstore.ObjectInfo{Key: s.StoreKey(a.Name), Size: a.Size, ModTime: a.Updated,
			ETag: strconv.FormatInt(a.Generation, 10)})
	}
	return page, nil
}

// fail turns a client error into a Gale error that names the object and,
// for configuration problems, says how to fix them.
func (s *GCS) fail(ctx context.Context, op, name string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("gcp: %s %s: %w", op, name, err)
	}
	code := httpStatus(err)
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("gcp: %s %s: %w: %q (create it, or fix the bucket in the URL): %w", op, name, ErrNoSuchBucket, s.Bucket(), err)
	case errors.Is(err, storage.ErrObjectNotExist) || code == http.StatusNotFound:
		// A missing bucket also answers 404 on object calls: ask it once.
		if !s.bucketSeen.Load() {
			if _, berr := s.bkt.Attrs(ctx); berr == nil {
				s.bucketSeen.Store(true)
			} else if errors.Is(berr, storage.ErrBucketNotExist) || httpStatus(berr) == http.StatusNotFound {
				return fmt.Errorf("gcp: %s %s: %w: %q (create it, or fix the bucket in the URL)", op, name, ErrNoSuchBucket, s.Bucket())
			}
		}
		return fmt.Errorf("gcp: %s %s: %w", op, name, objstore.ErrNotExist)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("gcp: %s %s: GCS rejected the credentials (run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS): %w", op, name, err)
	case code == http.StatusForbidden:
		return fmt.Errorf("gcp: %s %s: access denied (grant these credentials roles/storage.objectAdmin on the bucket): %w", op, name, err)
	case isNetErr(err):
		return fmt.Errorf("gcp: %s %s: cannot reach GCS (%s): %w", op, name, s.hint, err)
	}
	return fmt.Errorf("gcp: %s %s: %w", op, name, err)
}

// httpStatus returns the HTTP status behind a client error, or 0.
func httpStatus(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

func isNetErr(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns)
}

// GCSOpener returns an objstore.Opener for gs://bucket/prefix URLs with
// cfg. The URL's query may override cfg's endpoint, e.g.
// gs://bucket/prefix?endpoint=http://127.0.0.1:4443/storage/v1/.
func GCSOpener(cfg GCSConfig) objstore.Opener {
	return func(ctx context.Context, u *url.URL) (objstore.Store, error) {
		if u.Host == "" {
			return nil, errors.New("gcp: gs URL has no bucket (write gs://bucket/prefix)")
		}
		c := cfg
		for k, v := range u.Query() {
			switch k {
			case "endpoint":
				c.Endpoint = v[len(v)-1]
			default:
				return nil, fmt.Errorf("gcp: gs URL: unknown parameter %q (known: endpoint)", k)
			}
		}
		return NewGCS(ctx, c, u.Host, strings.TrimPrefix(u.Path, "/"))
	}
}
