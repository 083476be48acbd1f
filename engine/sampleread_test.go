package engine

import "testing"

func TestSampleWindows(t *testing.T) {
	text := InputSpec{Kind: InputText, Off: 1000, Len: 64 << 20}
	wins := sampleWindows(text, 7)
	// 1,024 slots of 64 KiB: one window in 16, 64 windows.
	if len(wins) != 64 {
		t.Fatalf("got %d windows of a 64 MiB text range, want 64", len(wins))
	}
	end := text.Off
	for i, w := range wins {
		if w[0] < end || w[1] != sampleWindowBytes || w[0]+w[1] > text.Off+text.Len || (w[0]-text.Off)%sampleWindowBytes != 0 {
			t.Fatalf("window %d %v: not ordered, inside [%d, %d) and slot-aligned", i, w, text.Off, text.Off+text.Len)
		}
		end = w[0] + w[1]
	}
	if again := sampleWindows(text, 7); again[5] != wins[5] {
		t.Errorf("windows differ for the same seed: %v, %v", again[5], wins[5])
	}
	fixed := InputSpec{Kind: InputFixed, Off: 300, Len: 100 * 400_000, RecordSize: 100}
	for _, w := range sampleWindows(fixed, 1) {
		if (w[0]-fixed.Off)%100 != 0 || w[1]%100 != 0 || w[0]+w[1] > fixed.Off+fixed.Len {
			t.Fatalf("window %v of 100-byte records from %d is not record-aligned within the range", w, fixed.Off)
		}
	}
	huge := InputSpec{Kind: InputText, Len: 64 << 30}
	if n := len(sampleWindows(huge, 1)); n != maxSampleWindows {
		t.Errorf("64 GiB range: %d windows, want the cap %d", n, maxSampleWindows)
	}
	for name, in := range map[string]InputSpec{
		"small":      {Kind: InputText, Len: 3 << 20},
		"compressed": {Kind: InputText, Len: 64 << 20, Compression: "gzip"},
		"filter":     {Kind: InputText, Len: 64 << 20, GliderAction: "a"},
		"shuffle":    {Kind: InputShuffle, Len: 64 << 20},
	} {
		if w := sampleWindows(in, 1); w != nil {
			t.Errorf("%s: %d windows, want the whole range read", name, len(w))
		}
	}
}
