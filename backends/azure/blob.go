package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/galeproject/gale/backends/objstore"
)

// ErrNoSuchContainer is returned (wrapped, with the container) when the
// container a store names does not exist.
var ErrNoSuchContainer = errors.New("azure: container does not exist")

// maxListResults is the largest page List Blobs returns.
const maxListResults = 5000

// BlobConfig configures Blob stores.
type BlobConfig struct {
	// Account is the storage account. Required unless Endpoint names it.
	Account string
	// Endpoint is the Blob service URL; default
	// https://ACCOUNT.blob.core.windows.net. For Azurite:
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string
	// Key is the account's shared key (base64). Empty authenticates with
	// the Azure SDK's default credential chain (environment, workload
	// identity, managed identity, Azure CLI), which needs a role such as
	// Storage Blob Data Contributor on the container.
	Key string
	// BlockSize is the size of the blocks a Put stages; default 4 MiB,
	// minimum 1 MiB. A Put holds up to Concurrency blocks in memory.
	BlockSize int64
	// Concurrency is how many blocks of one Put upload at once. Default 4.
	Concurrency int
}

// Validate reports every problem with c; the messages name the store
// options (azblob.account, ...).
func (c BlobConfig) Validate() error {
	var errs []error
	if c.Account == "" && c.Endpoint == "" {
		errs = append(errs, errors.New("set azblob.account (the storage account) or azblob.endpoint (the Blob service URL)"))
	}
	if c.Account != "" && (len(c.Account) < 3 || len(c.Account) > 24 || strings.Trim(c.Account, "abcdefghijklmnopqrstuvwxyz0123456789") != "") {
		errs = append(errs, fmt.Errorf("azblob.account %q is not a storage account name (3-24 lower-case letters and digits)", c.Account))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("azblob.endpoint %q is not an http:// or https:// URL", c.Endpoint))
		}
	}
	if c.BlockSize != 0 && c.BlockSize < 1<<20 {
		errs = append(errs, fmt.Errorf("azblob.block_size %d is below 1 MiB", c.BlockSize))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("azblob.concurrency %d is negative", c.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("azure: invalid Blob store config: %w", err)
	}
	return nil
}

// endpoint returns the Blob service URL and the account it names.
func (c BlobConfig) endpoint() (string, string) {
	if c.Endpoint == "" {
		return "https://" + c.Account + ".blob.core.windows.net/", c.Account
	}
	ep := strings.TrimSuffix(c.Endpoint, "/") + "/"
	account := c.Account
	if account == "" {
		u, _ := url.Parse(ep)
		if p := strings.Trim(u.Path, "/"); p != "" {
			account = p // path style, as Azurite serves: http://host:port/ACCOUNT
		} else {
			account, _, _ = strings.Cut(u.Hostname(), ".") // ACCOUNT.blob.core.windows.net
		}
	}
	return ep, account
}

// Blob is an objstore.Store on one Blob Storage container, with keys
// relative to a prefix. It is safe for concurrent use.
//
// Put writes an object of at most BlockSize bytes with one Put Blob, and
// a larger one by staging blocks (the SDK's UploadStream: BlockSize
// blocks, Concurrency in flight) and committing the block list last: a
// blob becomes visible, or replaces the old one, only at that request,
// so a failed or cancelled Put leaves nothing (uncommitted blocks are
// discarded by the service). Get is a ranged Get Blob; List pages are List Blobs pages
// whose tokens are the service's markers; Copy is a server-side copy.
type Blob struct {
	objstore.Location // the container and prefix
	client            *container.Client
	cfg               BlobConfig
	hint              string
}

var (
	_ objstore.Store  = (*Blob)(nil)
	_ objstore.Copier = (*Blob)(nil)
)

// NewBlob returns a store on containerName with keys relative to prefix.
// It sends no request.
func NewBlob(cfg BlobConfig, containerName, prefix string) (*Blob, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 4 << 20
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if !validContainer(containerName) {
		return nil, fmt.Errorf("azure: azblob://%s: %q is not a container name (3-63 lower-case letters, digits and single hyphens; write azblob://container/prefix)", containerName, containerName)
	}
	loc, err := objstore.NewLocation("azure", "azblob", containerName, prefix)
	if err != nil {
		return nil, err
	}
	name := loc.String()
	ep, account := cfg.endpoint()
	curl := ep + url.PathEscape(containerName)
	var client *container.Client
	if cfg.Key != "" {
		cred, kerr := container.NewSharedKeyCredential(account, cfg.Key)
		if kerr != nil {
			return nil, fmt.Errorf("azure: %s: azblob.key is not a valid shared key for account %q (copy key1 from the account's Access keys): %w", name, account, kerr)
		}
		client, err = container.NewClientWithSharedKeyCredential(curl, cred, nil)
	} else {
		cred, cerr := azidentity.NewDefaultAzureCredential(nil)
		if cerr != nil {
			return nil, fmt.Errorf("azure: %s: no Azure credentials (set azblob.key, or sign in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET): %w", name, cerr)
		}
		client, err = container.NewClient(curl, cred, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("azure: %s: %w", name, err)
	}
	return &Blob{Location: loc, client: client, cfg: cfg,
		hint: "check azblob.account/azblob.endpoint and that the service is up (" + ep + ")"}, nil
}

// BlobOpener returns an objstore.Opener for azblob://container/prefix URLs.
func BlobOpener(cfg BlobConfig) objstore.Opener {
	return func(_ context.Context, u *url.URL) (objstore.Store, error) {
		return NewBlob(cfg, u.Host, u.Path)
	}
}

func validContainer(n string) bool {
	if len(n) < 3 || len(n) > 63 || n[0] == '-' || n[len(n)-1] == '-' || strings.Contains(n, "--") {
		return n == "$root"
	}
	return strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// Container returns the SDK's container client, for operations beyond
// Store.
func (s *Blob) Container() *container.Client { return s.client }

// fail maps an SDK error for op on what.
func (s *Blob) fail(ctx context.Context, op, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("azure: %s %s: %w", op, what, context.Cause(ctx))
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("azure: %s %s: %w: %s (create it with `az storage container create -n %s`)", op, what, ErrNoSuchContainer, s.Bucket(), s.Bucket())
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("azure: %s %s: %w", op, what, objstore.ErrNotExist)
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch):
		return fmt.Errorf("azure: %s %s: access denied (check azblob.key, or the credential's role on the container): %w", op, what, err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 {
		return fmt.Errorf("azure: %s %s: %w", op, what, objstore.ErrNotExist)
	}
	if !errors.As(err, &re) {
		return fmt.Errorf("azure: %s %s (%s): %w", op, what, s.hint, err)
	}
	return fmt.Errorf("azure: %s %s: %w", op, what, err)
}

// Get implements objstore.Store with a ranged Get Blob.
func (s *Blob) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	k, err := s.GetKey(key, off)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return objstore.EmptyRead(ctx, s, key)
	}
	opts := &blob.DownloadStreamOptions{}
	if off > 0 || n > 0 {
		opts.Range = blob.HTTPRange{Offset: off, Count: max(n, 0)}
	}
	resp, err := s.client.NewBlobClient(k).DownloadStream(ctx, opts)
	if err != nil {
		if bloberror.HasCode(err, bloberror.InvalidRange) {
			// The range starts at or past the end of an existing blob (a
			// missing one is BlobNotFound): the truncated range is empty.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.fail(ctx, "get", s.Name(key), err)
	}
	return resp.Body, nil
}

// Put implements objstore.Store: blocks are staged, then committed.
func (s *Blob) Put(ctx context.Context, key string, r io.Reader) error {
	k, err := s.WriteKey("put", key)
	if err != nil {
		return err
	}
	bb := s.client.NewBlockBlobClient(k)
	// An object that fits in one block is one Put Blob, atomic by itself;
	// streaming it would cost the uploader's Concurrency buffers of
	// BlockSize each, for the many small objects a shuffle writes.
	first := make([]byte, s.cfg.BlockSize)
	n, err := io.ReadFull(r, first)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		_, err = bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(first[:n])), nil)
	case err != nil:
		return fmt.Errorf("azure: put %s: reading the data: %w", s.Name(key), err)
	default:
		// A reader that fails must fail the Put: the uploader stops at
		// the error and commits nothing; the error is kept as a guard.
		er := &errReader{r: io.MultiReader(bytes.NewReader(first), r)}
		_, err = bb.UploadStream(ctx, er, &blockblob.UploadStreamOptions{BlockSize: s.cfg.BlockSize, Concurrency: s.cfg.Concurrency})
		if err == nil && er.err != nil {
			err = er.err
		}
	}
	if err != nil {
		return s.fail(ctx, "put", s.Name(key), err)
	}
	return nil
}

type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Stat implements objstore.Store with Get Blob Properties.
func (s *Blob) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	k, err := s.ReadKey("stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	p, err := s.client.NewBlobClient(k).GetProperties(ctx, nil)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail(ctx, "stat", s.Name(key), err)
	}
	info := objstore.ObjectInfo{Key: key}
	if p.ContentLength != nil {
		info.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		info.ModTime = *p.LastModified
	}
	if p.ETag != nil {
		info.ETag = strings.Trim(string(*p.ETag), `"`)
	}
	return info, nil
}

// Delete implements objstore.Store; a missing blob is not an error.
func (s *Blob) Delete(ctx context.Context, key string) error {
	k, err := s.ReadKey("delete", key)
	if err != nil {
		return err
	}
	_, err = s.client.NewBlobClient(k).Delete(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		if err := s.fail(ctx, "delete", s.Name(key), err); !errors.Is(err, objstore.ErrNotExist) {
			return err
		}
	}
	return nil
}

// List implements objstore.Store with List Blobs (flat). Limits above the
// service's page of 5000 return at most 5000 blobs.
func (s *Blob) List(ctx context.Context, prefix, token string, limit int) (objstore.ListPage, error) {
	if limit <= 0 || limit > maxListResults {
		limit = maxListResults
	}
	opts := &container.ListBlobsFlatOptions{Prefix: to.Ptr(s.Prefix() + prefix), MaxResults: to.Ptr(int32(limit))}
	if token != "" {
		opts.Marker = &token
	}
	pager := s.client.NewListBlobsFlatPager(opts)
	resp, err := pager.NextPage(ctx)
	if err != nil {
		return objstore.ListPage{}, s.fail(ctx, "list", s.Name(prefix+"*"), err)
	}
	page := objstore.ListPage{}
	if resp.Segment != nil {
		page.Objects = make([]objstore.ObjectInfo, 0, len(resp.Segment.BlobItems))
		for _, it := range resp.Segment.BlobItems {
			if it.Name == nil {
				continue
			}
			o := objstore.ObjectInfo{Key: s.StoreKey(*it.Name)}
			if it.Properties != nil {
				if it.Properties.ContentLength != nil {
					o.Size = *it.Properties.ContentLength
				}
				if it.Properties.LastModified != nil {
					o.ModTime = *it.Properties.LastModified
				}
				if it.Properties.ETag != nil {
					o.ETag = strings.Trim(string(*it.Properties.ETag), `"`)
				}
			}
			page.Objects = append(page.Objects, o)
		}
	}
	if resp.NextMarker != nil {
		page.Next = *resp.NextMarker
	}
	return page, nil
}

// Copy implements objstore.Copier with a server-side Copy Blob, waiting
// for the copy to finish (within one account it normally completes at
// once).
func (s *Blob) Copy(ctx context.Context, from, to string) error {
	kf, err := s.ReadKey("copy", from)
	if err != nil {
		return err
	}
	kt, err := s.WriteKey("copy", to)
	if err != nil {
		return err
	}
	what := s.Name(from) + " to " + s.Name(to)
	src := s.client.NewBlobClient(kf)
	if _, err := src.GetProperties(ctx, nil); err != nil {
		return s.fail(ctx, "copy", what, err)
	}
	dst := s.client.NewBlobClient(kt)
	resp, err := dst.StartCopyFromURL(ctx, src.URL(), nil)
	if err != nil {
		return s.fail(ctx, "copy", what, err)
	}
	status := resp.CopyStatus
	for delay := 10 * time.Millisecond; status != nil && *status == blob.CopyStatusTypePending; delay = min(2*delay, time.Second) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			if resp.CopyID != nil {
				dst.AbortCopyFromURL(context.WithoutCancel(ctx), *resp.CopyID, nil)
			}
			return fmt.Errorf("azure: copy %s: %w", what, context.Cause(ctx))
		}
		p, err := dst.GetProperties(ctx, nil)
		if err != nil {
			return s.fail(ctx, "copy", what, err)
		}
		status = p.CopyStatus
	}
	if status != nil && *status != blob.CopyStatusTypeSuccess {
		return fmt.Errorf("azure: copy %s ended with status %s", what, *status)
	}
	return nil
}
