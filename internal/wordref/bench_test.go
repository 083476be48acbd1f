package wordref

import (
	"bytes"
	"context"
	"testing"

	"github.com/galeproject/gale/internal/textgen"
)

// BenchmarkCount measures Count on a 256 MiB generated corpus held in
// memory, so that only counting is timed.
func BenchmarkCount(b *testing.B) {
	cfg := textgen.DefaultConfig()
	cfg.Size = 256 << 20
	var corpus bytes.Buffer
	corpus.Grow(int(cfg.Size))
	if err := textgen.Generate(context.Background(), &corpus, cfg); err != nil {
		b.Fatal(err)
	}
	data := corpus.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Count(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
