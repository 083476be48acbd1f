package wordref_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/galeproject/gale/internal/wordref"
)

func Example() {
	counts, err := wordref.Count(strings.NewReader("The cat, the HAT.\r\nİstanbul's café: 2 cafés\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := wordref.WriteSorted(os.Stdout, counts); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 2	1
	// café	1
	// cafés	1
	// cat	1
	// hat	1
	// istanbul	1
	// s	1
	// the	2
}
