package shuffle

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestObjectLayout(t *testing.T) {
	parts := [][]byte{[]byte("alpha"), nil, bytes.Repeat([]byte("b"), 300), []byte("c")}
	o := NewObject(parts)
	all := o.Bytes()
	if int64(len(all)) != o.Size() {
		t.Fatalf("Bytes is %d bytes, Size %d", len(all), o.Size())
	}
	streamed, err := io.ReadAll(o.Reader())
	if err != nil || !bytes.Equal(streamed, all) {
		t.Fatalf("Reader: %v, %d bytes, want %d", err, len(streamed), len(all))
	}
	for i, r := range o.Ranges {
		if got := all[r.Off : r.Off+r.Len]; !bytes.Equal(got, parts[i]) {
			t.Errorf("partition %d at %+v holds %q", i, r, got)
		}
	}
	// The bytes on disk are the engine's layout since version 1: the
	// footer of uvarint lengths, its length and "GALESHF1".
	want := "alpha" + strings.Repeat("b", 300) + "c" + "\x05\x00\xac\x02\x01" + "\x05\x00\x00\x00\x00\x00\x00\x00" + "GALESHF1"
	if string(all) != want {
		t.Fatalf("object bytes\n%q\nwant\n%q", all, want)
	}
	n, err := FooterLen(all[len(all)-TrailerSize:])
	if err != nil || n != 5 {
		t.Fatalf("FooterLen = %d, %v", n, err)
	}
	rs, err := ParseFooter(all[len(all)-TrailerSize-int(n):], int64(len(all)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(o.Ranges) {
		t.Fatalf("ParseFooter: %d ranges, want %d", len(rs), len(o.Ranges))
	}
	for i := range rs {
		if rs[i] != o.Ranges[i] {
			t.Errorf("range %d: footer %+v, writer %+v", i, rs[i], o.Ranges[i])
		}
	}
}

func TestObjectLayoutRefusals(t *testing.T) {
	all := NewObject([][]byte{[]byte("abc"), []byte("de")}).Bytes()
	trailer := func(b []byte) []byte { return b[len(b)-TrailerSize:] }
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"not a shuffle object", func(b []byte) []byte { b[len(b)-2] = 'X'; return b }, "not a shuffle object"},
		{"another version", func(b []byte) []byte { b[len(b)-1] = '2'; return b }, "layout version '2'"},
		{"corrupt footer length", func(b []byte) []byte { b[len(b)-TrailerSize+7] = 0x7f; return b }, "corrupt"},
	} {
		b := c.edit(bytes.Clone(all))
		_, err := FooterLen(trailer(b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: FooterLen = %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// A footer that does not add up to the object's data.
	tail := all[len(all)-TrailerSize-2:]
	if _, err := ParseFooter(tail, int64(len(all))+1); err == nil {
		t.Error("ParseFooter accepted a size one byte off")
	}
	if _, err := ParseFooter(tail[1:], int64(len(all))); err == nil {
		t.Error("ParseFooter accepted a cut footer")
	}
}
