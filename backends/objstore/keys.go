package objstore

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKey is returned (wrapped, with the key and the reason) for a key
// that breaks the rules of ValidateKey.
var ErrInvalidKey = errors.New("objstore: invalid key")

// TempPrefix starts the names of the temporary files a filesystem store
// writes before renaming them into place. No key segment may start with it,
// and listings never show such files.
const TempPrefix = ".gale-tmp-"

// ValidateKey reports whether key is a portable object key: a non-empty,
// slash-separated relative name whose segments are neither empty, "." nor
// "..", that contains no backslash or NUL byte and no segment starting with
// TempPrefix. The same key then names the same object on every store (a
// filesystem maps segments to directories). Every store rejects invalid keys
// on write; the filesystem store also on read. The error wraps ErrInvalidKey
// and names the key.
func ValidateKey(key string) error {
	why := keyProblem(key)
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty key"
	case key[0] == '/':
		return "keys are relative: drop the leading slash"
	case strings.Contains(key, `\`):
		return `backslash in key: use "/" to separate segments`
	case strings.IndexByte(key, 0) >= 0:
		return "NUL byte in key"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return `empty segment ("//" or a trailing "/")`
		case seg == "." || seg == "..":
			return fmt.Sprintf("%q segment", seg)
		case strings.HasPrefix(seg, TempPrefix):
			return fmt.Sprintf("segment %q starts with the reserved prefix %q", seg, TempPrefix)
		}
	}
	return ""
}

// validatePrefix checks a listing prefix: every complete segment (those
// followed by a slash) must be valid, and the prefix may not start with a
// slash or contain a backslash. The last, partial segment is free, so "a/b"
// lists "a/b", "a/b.txt" and "a/b/c".
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	i := strings.LastIndexByte(prefix, '/')
	if why := keyProblem(prefix[:i+1] + "x"); why != "" {
		return fmt.Errorf("invalid list prefix %q: %s", prefix, why)
	}
	if strings.Contains(prefix[i+1:], `\`) || strings.IndexByte(prefix, 0) >= 0 {
		return fmt.Errorf("invalid list prefix %q: backslash or NUL byte", prefix)
	}
	return nil
}
