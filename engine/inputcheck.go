package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/galeproject/gale/backends/objstore"
)

// ErrInputChanged is returned (wrapped) when an input object changed, or
// went away, between planning and the end of the job.
var ErrInputChanged = errors.New("engine: input changed while the job ran")

// ObjectStamp is what an input object was when the job was planned.
type ObjectStamp struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	// ETag is the store's version of the content (objstore.ObjectInfo.ETag),
	// "" where it exposes none.
	ETag string `json:"etag,omitempty"`
}

// StampOf returns the stamp of an object as the store described it.
func StampOf(o objstore.ObjectInfo) *ObjectStamp {
	return &ObjectStamp{Size: o.Size, ModTime: o.ModTime, ETag: o.ETag}
}

// matches reports whether o is still the object s describes: the same size,
// and the same ETag where both have one, else the same modification time
// (at whole seconds when either side has no finer precision, as S3's HEAD
// answers).
func (s *ObjectStamp) matches(o objstore.ObjectInfo) bool {
	if s.Size != o.Size {
		return false
	}
	if s.ETag != "" && o.ETag != "" {
		return s.ETag == o.ETag
	}
	a, b := s.ModTime, o.ModTime
	if a.Nanosecond() == 0 || b.Nanosecond() == 0 {
		a, b = a.Truncate(time.Second), b.Truncate(time.Second)
	}
	return a.Equal(b)
}

func (s *ObjectStamp) String() string {
	v := fmt.Sprintf("%d bytes, modified %s", s.Size, s.ModTime.UTC().Format(time.RFC3339Nano))
	if s.ETag != "" {
		v += ", ETag " + s.ETag
	}
	return v
}

// checkStamp compares the object key of st with its stamp from planning.
func checkStamp(ctx context.Context, st objstore.Store, key string, want *ObjectStamp) error {
	o, err := st.Stat(ctx, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return fmt.Errorf("%w: %s/%s was deleted (planned as %s); no output was committed: run the job again once its input stays put",
			ErrInputChanged, st, key, want)
	}
	if err != nil {
		return fmt.Errorf("engine: checking input %s/%s: %w", st, key, err)
	}
	return stampError(st, key, want, o)
}

func stampError(st objstore.Store, key string, want *ObjectStamp, o objstore.ObjectInfo) error {
	if want.matches(o) {
		return nil
	}
	return fmt.Errorf("%w: %s/%s was %s when the job was planned and is now %s; no output was committed: "+
		"run the job again once its input stays put", ErrInputChanged, st, key, want, StampOf(o))
}

// checkInputs checks, before the output is committed, that every input
// object is still what it was when the job was planned, so an output is
// never made of two versions of an input. A store holding few inputs is
// asked about each (16 at a time); one holding many is listed once under
// their common prefix.
func (d *driver) checkInputs(ctx context.Context) error {
	byStore := map[string]map[string]*ObjectStamp{}
	for _, ins := range d.job.Inputs {
		for _, in := range ins {
			if in.Expect == nil {
				continue
			}
			if byStore[in.URL] == nil {
				byStore[in.URL] = map[string]*ObjectStamp{}
			}
			byStore[in.URL][in.Key] = in.Expect
		}
	}
	urls := make([]string, 0, len(byStore))
	for u := range byStore {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	var errs []error
	for _, u := range urls {
		st, err := d.cfg.OpenStore(ctx, u, d.job.StoreOptions)
		if err != nil {
			return fmt.Errorf("engine: checking inputs in %s: %w", u, err)
		}
		errs = append(errs, checkStore(ctx, st, byStore[u])...)
	}
	if len(errs) > maxReported {
		errs = append(errs[:maxReported], fmt.Errorf("%w: and %d more input objects", ErrInputChanged, len(errs)-maxReported))
	}
	return errors.Join(errs...)
}

// maxReported is how many changed inputs an error names.
const maxReported = 5

// listAtLeast is how many inputs of one store make checkStore list them
// instead of asking about each.
const listAtLeast = 64

// checkStore checks the inputs of one store against their stamps.
func checkStore(ctx context.Context, st objstore.Store, want map[string]*ObjectStamp) []error {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) >= listAtLeast {
		prefix := keys[0]
		for _, k := range keys[1:] {
			n := 0
			for n < len(prefix) && n < len(k) && prefix[n] == k[n] {
				n++
			}
			prefix = prefix[:n]
		}
		objs, err := objstore.ListAll(ctx, st, prefix)
		if err != nil {
			return []error{fmt.Errorf("engine: checking inputs in %s: %w", st, err)}
		}
		seen := make(map[string]bool, len(keys))
		var errs []error
		for _, o := range objs {
			if w, ok := want[o.Key]; ok {
				seen[o.Key] = true
				if err := stampError(st, o.Key, w, o); err != nil {
					errs = append(errs, err)
				}
			}
		}
		var missing []string
		for _, k := range keys {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		keys = missing // not listed: deleted, or a listing that lags
		if len(errs) > 0 || len(keys) == 0 {
			return errs
		}
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 16)
	)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := checkStamp(ctx, st, k, want[k]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(errs, func(i, j int) bool { return strings.Compare(errs[i].Error(), errs[j].Error()) < 0 })
	return errs
}
