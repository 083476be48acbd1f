package state

import (
	"context"
	"fmt"
	"github.com/galeproject/gale/state/internal/wire"
	"reflect"
)

// Object is a handle to a user-defined shared object: an instance of a type
// registered with RegisterType in the server's Registry. Call its methods
// with Call (which decodes the result) or Invoke.
//
// Arguments and results travel as tagged values: a compact encoding for
// scalars, strings and byte slices, gob for everything else (see
// encodeValue for why).
type Object struct{ ref }

// Object returns a handle to the user-defined object (typ, key).
func (c *Client) Object(typ, key string) Object { return Object{ref{c: c, typ: typ, key: key}} }

// Persistent returns a handle that creates the object persistent.
func (o Object) Persistent() Object { o.flags |= wire.FlagPersistent; return o }

func encodeArgs(args []any) ([][]byte, error) {
	out := make([][]byte, len(args))
	for i, a := range args {
		b, err := encodeValue(a)
		if err != nil {
			return nil, fmt.Errorf("state: encoding argument %d (%T): %w", i+1, a, err)
		}
		out[i] = b
	}
	return out, nil
}

// Invoke calls method on the object with args and discards any result.
func (o Object) Invoke(ctx context.Context, method string, args ...any) error {
	enc, err := encodeArgs(args)
	if err != nil {
		return err
	}
	_, err = o.call(ctx, method, enc...)
	return err
}

// Call calls method on the user-defined object o with args, runs it on the
// server, and decodes its result as R:
//
//	n, err := state.Call[int](ctx, c.Object("Centroids", "km"), "Merge", partial)
//
// A typed wrapper makes calls read like method calls; see the package
// example.
func Call[R any](ctx context.Context, o Object, method string, args ...any) (R, error) {
	var r R
	enc, err := encodeArgs(args)
	if err != nil {
		return r, err
	}
	b, err := o.call(ctx, method, enc...)
	if err != nil {
		return r, err
	}
	if len(b) == 0 {
		return r, fmt.Errorf("state: %s(%q).%s returned no result to decode as %T", o.typ, o.key, method, r)
	}
	if err := decodeValue(b, reflect.ValueOf(&r).Elem()); err != nil {
		return r, fmt.Errorf("state: %s(%q).%s: result does not decode as %T: %w", o.typ, o.key, method, r, err)
	}
	return r, nil
}
