package textgen

import (
	"context"
	"io"
	"testing"
)

// BenchmarkGenerate measures generation throughput into io.Discard with
// the default configuration on all cores; the vocabulary is built once per
// call, as in real use.
func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Size = 128 << 20
	b.SetBytes(cfg.Size)
	for b.Loop() {
		if err := Generate(context.Background(), io.Discard, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildVocab(b *testing.B) {
	cfg := DefaultConfig()
	for b.Loop() {
		buildVocab(&cfg)
	}
}

func BenchmarkGenerateBlock(b *testing.B) {
	cfg := DefaultConfig()
	v := buildVocab(&cfg)
	buf := make([]byte, 0, cfg.BlockSize+slack)
	b.SetBytes(int64(cfg.BlockSize))
	i := int64(0)
	for b.Loop() {
		buf = generateBlock(v, &cfg, i, cfg.BlockSize, buf)
		i++
	}
}
