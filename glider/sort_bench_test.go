package glider

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkSortAction collects, sorts and emits 1,000,000 100-byte
// records with 10-byte random keys (the sort benchmark's layout) from two
// writers, as a glider sort's action does.
func BenchmarkSortAction(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	streams := make([][]byte, 2)
	for w := range streams {
		streams[w] = AppendRecord(nil, []byte(WriterKey), binary.AppendUvarint(nil, uint64(w)))
	}
	v := make([]byte, 99)
	for i := range n {
		for j := range 10 {
			v[j] = byte(' ' + rng.IntN(95))
		}
		streams[i%2] = AppendRecord(streams[i%2], nil, v)
	}
	ctx := context.Background()
	b.SetBytes(n * 100)
	for b.Loop() {
		a := &sortAction{}
		env := NewEnv(DefaultRegistry(), "/s", ActionSort, map[string]string{"writer-ids": "true", "value-key": "10", "values": "true", "terminator": "\n"}, nil)
		if err := a.OnCreate(ctx, env); err != nil {
			b.Fatal(err)
		}
		for _, s := range streams {
			if err := a.OnWrite(ctx, bytes.NewReader(s)); err != nil {
				b.Fatal(err)
			}
		}
		a.sort()
		if err := a.emit(io.Discard, true); err != nil {
			b.Fatal(err)
		}
	}
}
