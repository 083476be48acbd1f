package worker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec"
	"github.com/galeproject/gale/shuffle"
)

// sideData is one side input, indexed by encoded window (and key).
type sideData struct {
	load func() error // fills the maps on first use
	once sync.Once
	err  error
	iter map[string][]byte            // window -> concatenated values
	mm   map[string]map[string][]byte // window -> key -> concatenated values
}

// stateReader is the exec.StateReader of one task: it serves side inputs
// from the side edges' records, read whole from the temporary store.
type stateReader struct {
	sides map[string]*sideData // transform + "/" + local ID
	// iterables holds the tails of the task's large groups (nil: none).
	iterables *iterableFiles
	// state is the user state of a stage that reads a keyed edge (nil
	// otherwise; see userstate.go).
	state *userState
}

// newSideData indexes a side edge's records, whole windowed elements with
// coder c: by window for iterable access, by window and key for multimap
// access.
func newSideData(read func() ([][]byte, error), c *coder.Coder, multimap bool) *sideData {
	d := &sideData{}
	d.load = func() error {
		segs, err := read()
		if err != nil {
			return err
		}
		if !coder.IsW(c) {
			return fmt.Errorf("worker: side input coder %v is not windowed", c)
		}
		winDec := exec.MakeWindowDecoder(c.Window)
		winEnc := exec.MakeWindowEncoder(c.Window)
		elem := coder.SkipW(c)
		var keyDec exec.ElementDecoder
		if multimap {
			if !coder.IsKV(elem) {
				return fmt.Errorf("worker: map side input of non-KV elements %v", elem)
			}
			keyDec = exec.MakeElementDecoder(elem.Components[0])
			d.mm = map[string]map[string][]byte{}
		} else {
			d.iter = map[string][]byte{}
		}
		for _, seg := range segs {
			for len(seg) > 0 {
				var rec []byte
				if rec, seg, err = shuffle.ReadField(seg); err != nil {
					return err
				}
				r := bytes.NewReader(rec)
				ws, _, _, err := exec.DecodeWindowedValueHeader(winDec, r)
				if err != nil {
					return fmt.Errorf("worker: decoding side input: %w", err)
				}
				body := rec[len(rec)-r.Len():]
				var key, val []byte
				if multimap {
					cr := &captureReader{r: bufio.NewReader(bytes.NewReader(body))}
					if _, err := keyDec.Decode(cr); err != nil {
						return fmt.Errorf("worker: decoding side input key: %w", err)
					}
					key, val = body[:len(cr.buf)], body[len(cr.buf):]
				} else {
					val = body
				}
				for _, w := range ws {
					wb, err := exec.EncodeWindow(winEnc, w)
					if err != nil {
						return err
					}
					if multimap {
						byKey := d.mm[string(wb)]
						if byKey == nil {
							byKey = map[string][]byte{}
							d.mm[string(wb)] = byKey
						}
						byKey[string(key)] = append(byKey[string(key)], val...)
					} else {
						d.iter[string(wb)] = append(d.iter[string(wb)], val...)
					}
				}
			}
		}
		return nil
	}
	return d
}

func (s *stateReader) side(id exec.StreamID, local string) (*sideData, error) {
	d, ok := s.sides[id.PtransformID+"/"+local]
	if !ok {
		return nil, fmt.Errorf("worker: transform %s reads side input %s, which the task does not carry", id.PtransformID, local)
	}
	d.once.Do(func() { d.err = d.load() })
	return d, d.err
}

func (s *stateReader) OpenIterableSideInput(_ context.Context, id exec.StreamID, local string, w []byte) (io.ReadCloser, error) {
	d, err := s.side(id, local)
	if err != nil {
		return nil, err
	}
	if d.iter == nil {
		return nil, fmt.Errorf("worker: side input %s of %s is a map side input, read as iterable", local, id.PtransformID)
	}
	return io.NopCloser(bytes.NewReader(d.iter[string(w)])), nil
}

func (s *stateReader) OpenMultiMapSideInput(_ context.Context, id exec.StreamID, local string, key, w []byte) (io.ReadCloser, error) {
	d, err := s.side(id, local)
	if err != nil {
		return nil, err
	}
	if d.mm == nil {
		return nil, fmt.Errorf("worker: side input %s of %s is an iterable side input, read as a map", local, id.PtransformID)
	}
	return io.NopCloser(bytes.NewReader(d.mm[string(w)][string(key)])), nil
}

// GetSideInputCache returns a cache that keeps nothing: side inputs are
// already held in memory, indexed, for the task.
func (s *stateReader) GetSideInputCache() exec.SideCache { return noCache{} }

type noCache struct{}

func (noCache) QueryCache(context.Context, string, string, []byte, []byte) exec.ReStream { return nil }

func (noCache) SetCache(_ context.Context, _, _ string, _, _ []byte, r exec.ReStream) exec.ReStream {
	return r
}

var (
	_ exec.StateReader = (*stateReader)(nil)
	_ exec.DataManager = (*dataManager)(nil)
)
