package coder

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
)

type point struct {
	X, Y  float64
	Label string
	Tags  []string
	Attrs map[string]int
	Next  *point
}

type hidden struct {
	Visible int
	secret  int
}

type kv[K, V any] struct {
	Key   K
	Value V
}

func (kv[K, V]) GaleCoder() any {
	return Pair[K, V, kv[K, V]]{A: For[K](), B: For[V](),
		Split: func(p kv[K, V]) (K, V) { return p.Key, p.Value },
		Join:  func(k K, v V) kv[K, V] { return kv[K, V]{k, v} }}
}

func roundTrip[T any](t *testing.T, vals ...T) {
	t.Helper()
	if err := Check[T](); err != nil {
		t.Fatalf("Check[%T]: %v", *new(T), err)
	}
	c := For[T]()
	var buf []byte
	for _, v := range vals {
		buf = c.Append(buf, v)
	}
	for i, want := range vals {
		got, n, err := c.Decode(buf)
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("value %d: got %#v, want %#v", i, got, want)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left over", len(buf))
	}
}

func TestRoundTrips(t *testing.T) {
	roundTrip(t, "", "a", "héllo\x00wörld", string(make([]byte, 70000)))
	roundTrip(t, []byte{}, []byte("x"), []byte{0, 255})
	roundTrip(t, 0, 1, -1, math.MaxInt, math.MinInt)
	roundTrip(t, int8(-128), int8(127))
	roundTrip(t, uint64(0), uint64(math.MaxUint64))
	roundTrip(t, uint8(255), uint8(0))
	roundTrip(t, 0.0, -1.5, math.Inf(1), math.MaxFloat64, math.SmallestNonzeroFloat64)
	roundTrip(t, float32(1.25), float32(-3))
	roundTrip(t, true, false)
	roundTrip(t, kv[string, int64]{"a", 1}, kv[string, int64]{"", -5})
	roundTrip(t, kv[kv[int, string], []float64]{kv[int, string]{1, "x"}, []float64{1, 2}})
	roundTrip(t, point{X: 1, Y: 2, Label: "p", Tags: []string{"a", ""}, Attrs: map[string]int{"z": 1, "a": 2},
		Next: &point{X: 3}}, point{})
	roundTrip(t, [3]int{1, 2, 3})
	roundTrip(t, []string(nil), []string{})
}

func TestMapEncodingIsDeterministic(t *testing.T) {
	c := For[map[string]int]()
	m := map[string]int{}
	for i := 0; i < 100; i++ {
		m[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	first := c.Append(nil, m)
	for i := 0; i < 20; i++ {
		if got := c.Append(nil, m); string(got) != string(first) {
			t.Fatal("equal maps encoded differently")
		}
	}
}

func TestCheckRejectsWhatCannotTravel(t *testing.T) {
	for name, err := range map[string]error{
		"interface":  Check[any](),
		"func":       Check[func()](),
		"chan":       Check[chan int](),
		"unexported": Check[hidden](),
		"nested":     Check[[]map[string]hidden](),
	} {
		if err == nil {
			t.Errorf("%s: Check accepted a type that cannot travel", name)
		}
	}
	if err := Check[hidden](); err == nil || !contains(err.Error(), "secret") {
		t.Errorf("error should name the unexported field: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestCorruptInputIsAnError(t *testing.T) {
	for _, b := range [][]byte{nil, {0x80}, {5, 'a'}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, _, err := For[string]().Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%x): got %v, want ErrCorrupt", b, err)
		}
	}
	if _, _, err := For[point]().Decode([]byte{1, 2, 3}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short struct: got %v, want ErrCorrupt", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the reflective decoder: it must
// return an error or a value, never panic or over-allocate.
func FuzzDecode(f *testing.F) {
	c := For[point]()
	f.Add(c.Append(nil, point{X: 1, Label: "x", Tags: []string{"t"}, Attrs: map[string]int{"a": 1}, Next: &point{}}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := c.Decode(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		// What decodes must re-encode stably (bytes, not values, are
		// compared: NaN is not equal to itself).
		enc := c.Append(nil, v)
		again, _, err := c.Decode(enc)
		if err != nil {
			t.Fatalf("decoding the re-encoding of %#v: %v", v, err)
		}
		if enc2 := c.Append(nil, again); string(enc2) != string(enc) {
			t.Fatalf("re-encoding %#v is unstable", v)
		}
	})
}

// TestConcurrentFirstUseOfAType builds the codec of fresh nested struct
// types from many goroutines at once: none may see a codec another
// goroutine is still building (a nil or half-written encoder).
func TestConcurrentFirstUseOfAType(t *testing.T) {
	for round := range 40 {
		inner := reflect.StructOf([]reflect.StructField{
			{Name: fmt.Sprintf("A%d", round), Type: reflect.TypeFor[int64]()},
			{Name: "B", Type: reflect.TypeFor[string]()},
			{Name: "C", Type: reflect.TypeFor[[]float64]()},
		})
		outer := reflect.StructOf([]reflect.StructField{
			{Name: "Right", Type: reflect.TypeFor[bool]()},
			{Name: "L", Type: inner},
			{Name: "R", Type: reflect.SliceOf(inner)},
			{Name: "M", Type: reflect.MapOf(reflect.TypeFor[string](), inner)},
		})
		v := reflect.New(outer).Elem()
		v.Field(1).Field(0).SetInt(int64(round))
		v.Field(1).Field(1).SetString("b")
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if r := recover(); r != nil {
						errs <- fmt.Errorf("round %d: %v", round, r)
					}
				}()
				<-start
				c := coderOf(outer)
				buf := c.enc(nil, v)
				got := reflect.New(outer).Elem()
				if _, err := c.dec(buf, got); err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got.Field(1).Interface(), v.Field(1).Interface()) {
					errs <- fmt.Errorf("round %d: decoded %v, want %v", round, got.Interface(), v.Interface())
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}
