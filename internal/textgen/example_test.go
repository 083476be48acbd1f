package textgen_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/galeproject/gale/internal/textgen"
)

func Example() {
	cfg := textgen.DefaultConfig()
	cfg.Size = 1 << 20
	cfg.Seed = 42
	var b strings.Builder
	if err := textgen.Generate(context.Background(), &b, cfg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Len(), strings.HasSuffix(b.String(), "\n"))
	// Output: 1048576 true
}
