package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is returned (wrapped) when an object does not exist.
var ErrNotExist = errors.New("objstore: object does not exist")

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag names the version of the object's content where the store
	// exposes one (S3's and COS's ETag without its quotes, GCS's
	// generation, Azure's ETag), the same from Stat and List; "" where it
	// exposes none (a filesystem: ModTime, at full precision, serves).
	ETag string
}

// ListPage is one page of a listing.
type ListPage struct {
	Objects []ObjectInfo
	// Next is the token for the following page; empty when this is the
	// last page.
	Next string
}

// Store is an object store. All methods are safe for concurrent use.
type Store interface {
	// Get opens the byte range [off, off+n) of key; n < 0 means to the
	// end. A range past the end is truncated. The caller closes the reader.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Put stores everything read from r under key. The object becomes
	// visible only once Put has returned nil: a failed or cancelled Put
	// leaves no object and no partial object behind, and an object it
	// would have replaced stays as it was. A key that fails ValidateKey is
	// refused with an error wrapping ErrInvalidKey.
	Put(ctx context.Context, key string, r io.Reader) error
	// List returns up to limit objects whose keys start with prefix, in
	// lexical (byte) key order, starting after the page token: empty for
	// the first page, else the Next of the previous page, which is opaque.
	// limit <= 0 means the store's default page size. The caller owns the
	// returned slice.
	List(ctx context.Context, prefix, token string, limit int) (ListPage, error)
	// Stat describes key, or returns an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages, e.g. "s3://bucket/prefix".
	String() string
}

// Renamer is implemented by stores that can move an object atomically
// (a filesystem). Stores without it are moved by copy and delete.
type Renamer interface {
	Rename(ctx context.Context, from, to string) error
}

// Copier is implemented by stores that copy objects server-side (S3
// CopyObject). Move falls back to Get and Put without it.
type Copier interface {
	Copy(ctx context.Context, from, to string) error
}

// ListAll returns every object under prefix, following pagination.
func ListAll(ctx context.Context, s Store, prefix string) ([]ObjectInfo, error) {
	var all []ObjectInfo
	token := ""
	for {
		page, err := s.List(ctx, prefix, token, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Objects...)
		if page.Next == "" {
			return all, nil
		}
		token = page.Next
	}
}

// Move moves from to to within s: atomically where s is a Renamer, else by
// server-side copy (Copier) or by reading and writing, then deleting from.
func Move(ctx context.Context, s Store, from, to string) error {
	if r, ok := s.(Renamer); ok {
		return r.Rename(ctx, from, to)
	}
	if c, ok := s.(Copier); ok {
		if err := c.Copy(ctx, from, to); err != nil {
			return err
		}
		return s.Delete(ctx, from)
	}
	rc, err := s.Get(ctx, from, 0, -1)
	if err != nil {
		return err
	}
	err = s.Put(ctx, to, rc)
	rc.Close()
	if err != nil {
		return err
	}
	return s.Delete(ctx, from)
}
