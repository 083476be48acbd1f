package gensort_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/galeproject/gale/internal/gensort"
)

func BenchmarkGenerate(b *testing.B) {
	const count = 1 << 20 // 100 MiB
	for _, bc := range []struct {
		name string
		cfg  gensort.Config
	}{
		{"binary-p1", gensort.Config{Count: count, Parallelism: 1}},
		{"binary", gensort.Config{Count: count}},
		{"ascii", gensort.Config{Count: count, ASCII: true}},
		{"binary-skew", gensort.Config{Count: count, Skew: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(count * gensort.RecordSize)
			for b.Loop() {
				if _, err := gensort.Generate(context.Background(), io.Discard, bc.cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	var buf bytes.Buffer
	if _, err := gensort.Generate(context.Background(), &buf, gensort.Config{Count: 1 << 19}); err != nil {
		b.Fatal(err)
	}
	data := sortedCopy(buf.Bytes())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := gensort.Validate(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
