package gale

import "testing"

// TestCountWordsWriterAllocations: counting the words of a line already
// in the table, upper case included, allocates nothing.
func TestCountWordsWriterAllocations(t *testing.T) {
	w, err := wordsKernel{}.Writer(4, true)
	if err != nil {
		t.Fatal(err)
	}
	emit := w.Emit().(func(string))
	line := "The quick brown Fox jumps over the LAZY dog, naïve Café 42"
	emit(line)
	if allocs := testing.AllocsPerRun(100, func() { emit(line) }); allocs != 0 {
		t.Errorf("a line of known words allocated %.1f times, want 0", allocs)
	}
}
