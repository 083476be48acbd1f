package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/galeproject/gale/engine"
)

func echo(tag string) func(context.Context, []byte) ([]byte, error) {
	return func(_ context.Context, p []byte) ([]byte, error) { return append([]byte(tag+":"), p...), nil }
}

func TestMuxRoutesByKind(t *testing.T) {
	m := engine.NewMux()
	m.Register(engine.StageTaskKind, echo("stage"))
	m.Register("gale.thread/v1", echo("thread"))

	// A real stage descriptor, as the driver serializes it.
	stage, err := json.Marshal(engine.TaskSpec{Kind: engine.StageTaskKind, Version: engine.SpecVersion, Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	// The kind after other fields, some of them nested.
	thread := []byte(`{"fn":"pi","arg":{"kind":"inner","xs":[1,[2,{"a":3}]]},"n":null,"kind":"gale.thread/v1"}`)
	for _, tc := range []struct {
		payload []byte
		want    string
	}{{stage, "stage:"}, {thread, "thread:"}} {
		out, err := m.Handle(context.Background(), tc.payload)
		if err != nil {
			t.Fatalf("Handle(%s): %v", tc.payload, err)
		}
		if want := tc.want + string(tc.payload); string(out) != want {
			t.Errorf("Handle = %q, want %q", out, want)
		}
	}
	if got := strings.Join(m.Kinds(), ","); got != "gale.stage/v1,gale.thread/v1" {
		t.Errorf("Kinds = %s", got)
	}
}

func TestMuxUnknownKindNamesKnownKinds(t *testing.T) {
	m := engine.NewMux()
	m.Register(engine.StageTaskKind, echo("stage"))
	_, err := m.Handle(context.Background(), []byte(`{"kind":"gale.probe/v1"}`))
	if !errors.Is(err, engine.ErrUnknownKind) {
		t.Fatalf("err = %v, want ErrUnknownKind", err)
	}
	for _, s := range []string{`"gale.probe/v1"`, engine.StageTaskKind} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

func TestPayloadKindRejectsNonInvocations(t *testing.T) {
	for _, p := range []string{``, `[1,2]`, `"kind"`, `{"a":1}`, `{"kind":3}`, `{"kind":""}`, `{"a":[1,2`, `not json`} {
		if k, err := engine.PayloadKind([]byte(p)); err == nil {
			t.Errorf("PayloadKind(%q) = %q, want an error", p, k)
		} else if !strings.Contains(err.Error(), `"kind"`) {
			t.Errorf("PayloadKind(%q) error %q does not explain what is expected", p, err)
		}
	}
}

func TestMuxRegisterTwicePanics(t *testing.T) {
	m := engine.NewMux()
	m.Register("k", echo("a"))
	defer func() {
		if recover() == nil {
			t.Error("second Register of the same kind did not panic")
		}
	}()
	m.Register("k", echo("b"))
}

func FuzzPayloadKind(f *testing.F) {
	f.Add([]byte(`{"kind":"gale.stage/v1"}`))
	f.Add([]byte(`{"x":{"kind":"no"},"kind":"yes"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		k, err := engine.PayloadKind(p)
		if err != nil {
			return
		}
		// A kind was found: the payload must be a JSON object carrying it
		// at top level.
		var obj map[string]json.RawMessage
		if json.Unmarshal(p, &obj) != nil {
			return // trailing garbage after the kind is not inspected
		}
		var got string
		if json.Unmarshal(obj["kind"], &got) != nil || (got != k && !duplicateKinds(p)) {
			t.Fatalf("PayloadKind(%q) = %q, top-level kind is %s", p, k, obj["kind"])
		}
	})
}

// duplicateKinds reports whether p may have "kind" twice (encoding/json
// keeps the last, PayloadKind the first).
func duplicateKinds(p []byte) bool { return strings.Count(string(p), "kind") > 1 }
