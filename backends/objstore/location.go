package objstore

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Location is where a cloud object store keeps its objects: a bucket (a
// container on Azure) and a key prefix, named by a URL such as
// "s3://bucket/prefix". Cloud stores embed it so that every one of them
// checks keys by the same rules, maps them under the prefix the same way and
// names objects the same way in its errors. The zero Location is not
// usable; build one with NewLocation.
type Location struct {
	pkg    string // error prefix, the store's package: "aws", "gcp", ...
	scheme string
	bucket string
	prefix string // "" or ending in "/"
}

// NewLocation checks bucket and prefix and returns their Location. pkg
// prefixes its errors ("aws"), scheme names its URLs ("s3"). The bucket must
// be non-empty with no slash, backslash or space (stores with stricter
// naming rules check them first); a non-empty prefix, less any trailing
// slash, must be a valid key (ValidateKey).
func NewLocation(pkg, scheme, bucket, prefix string) (Location, error) {
	l := Location{pkg: pkg, scheme: scheme, bucket: bucket, prefix: strings.Trim(prefix, "/")}
	if bucket == "" || strings.ContainsAny(bucket, "/\\ ") {
		return Location{}, fmt.Errorf("%s: %s: invalid bucket name %q (write %s://bucket/prefix)", pkg, l, bucket, scheme)
	}
	if l.prefix != "" {
		if err := ValidateKey(l.prefix); err != nil {
			return Location{}, fmt.Errorf("%s: %s: prefix: %w", pkg, l, err)
		}
		l.prefix += "/"
	}
	return l, nil
}

// String returns the location's URL, "scheme://bucket/prefix" (no trailing
// slash).
func (l Location) String() string {
	if l.prefix == "" {
		return l.scheme + "://" + l.bucket
	}
	return l.scheme + "://" + l.bucket + "/" + strings.TrimSuffix(l.prefix, "/")
}

// Bucket returns the bucket (or container).
func (l Location) Bucket() string { return l.bucket }

// Prefix returns the key prefix, empty or ending in "/".
func (l Location) Prefix() string { return l.prefix }

// Name returns the URL of the object at key, for messages.
func (l Location) Name(key string) string { return l.scheme + "://" + l.bucket + "/" + l.prefix + key }

// ReadKey returns the cloud key of an object to read, stat, delete or copy
// from. Any non-empty key may be read (objects written by other tools need
// not follow ValidateKey's rules); op names the operation in the error.
func (l Location) ReadKey(op, key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%s: %s in %s: %w \"\": empty key", l.pkg, op, l, ErrInvalidKey)
	}
	return l.prefix + key, nil
}

// WriteKey returns the cloud key of an object to write, which must pass
// ValidateKey; op names the operation in the error.
func (l Location) WriteKey(op, key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("%s: %s in %s: %w", l.pkg, op, l, err)
	}
	return l.prefix + key, nil
}

// GetKey checks the arguments of Store.Get and returns the cloud key to read.
func (l Location) GetKey(key string, off int64) (string, error) {
	k, err := l.ReadKey("get", key)
	if err != nil {
		return "", err
	}
	if off < 0 {
		return "", fmt.Errorf("%s: get %s: negative offset %d", l.pkg, l.Name(key), off)
	}
	return k, nil
}

// StoreKey returns the store key of a cloud key found by a listing under
// the prefix.
func (l Location) StoreKey(cloudKey string) string { return strings.TrimPrefix(cloudKey, l.prefix) }

// ByteRange returns the HTTP Range header value ("bytes=off-last") for
// Store.Get's off and n (n < 0: to the end), or "" when the whole object is
// asked for. n must not be 0 (an empty read needs no request).
func ByteRange(off, n int64) string {
	if off == 0 && n < 0 {
		return ""
	}
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-"
	if n > 0 && n <= 1<<63-1-off {
		rng += strconv.FormatInt(off+n-1, 10)
	}
	return rng
}

// EmptyRead answers a Store.Get of zero bytes without reading: an empty
// reader if key exists in st, st.Stat's error if not.
func EmptyRead(ctx context.Context, st Store, key string) (io.ReadCloser, error) {
	if _, err := st.Stat(ctx, key); err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader("")), nil
}
