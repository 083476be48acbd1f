package textgen

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Streams of random numbers, each derived from Config.Seed and one of these
// labels, so that the vocabulary and every block draw independent numbers.
const (
	streamVocab = 0x766f636162756c61 // "vocabula"
	streamBlock = 0x626c6f636b746578 // "blocktex"
)

// mix returns a well-mixed 64-bit value from a and b (the SplitMix64
// finaliser applied to a combination of both).
func mix(a, b uint64) uint64 {
	z := a ^ (b+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// newRand returns the random source of stream label, index i, for seed.
func newRand(seed, label, i uint64) *rand.PCG {
	return rand.NewPCG(mix(mix(seed, label), i), mix(mix(seed, ^label), i))
}

// wyrand is the wyrand generator (Wang Yi): a 64-bit counter passed through
// a 128-bit multiply. Blocks draw two or three numbers per word, and
// math/rand/v2's PCG took a fifth of the generation time; wyrand is about
// three times cheaper and passes BigCrush and PractRand, which is more than
// synthetic text needs. It is a value type: copying it forks the stream.
type wyrand struct{ state uint64 }

func newWyrand(seed, label, i uint64) wyrand {
	return wyrand{state: mix(mix(seed, label), i)}
}

func (w *wyrand) next() uint64 {
	w.state += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(w.state, w.state^0xe7037ed1a0b428db)
	return hi ^ lo
}

// realNonASCII are real words placed at fixed ranks among the first
// thousand, so that even small corpora contain them. Some carry capitals of
// their own (Ωmega, İstanbul, Ελλάδα).
var realNonASCII = [...]string{
	"café", "naïve", "straße", "Ωmega", "東京", "число", "über", "résumé",
	"façade", "jalapeño", "smörgåsbord", "crème", "brûlée", "déjà", "señor",
	"mañana", "zoë", "ångström", "fjörður", "Ελλάδα", "άλφα", "москва",
	"привет", "мир", "日本語", "北京", "학교", "서울", "İstanbul", "łódź",
	"čaj", "şehir", "œuvre", "ærø", "ĳssel", "κόσμος", "λόγος", "язык", "漢字",
	"Ñandú",
}

// Syllable parts. Pseudo-words are built from an onset, a nucleus and a
// coda per syllable, which keeps them pronounceable.
var (
	asciiOnsets = [...]string{"", "", "b", "c", "d", "f", "g", "h", "j", "k",
		"l", "m", "n", "p", "r", "s", "t", "v", "w", "y", "z", "b", "c", "d",
		"f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "w", "br", "ch",
		"cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sh", "sl", "sp",
		"st", "str", "th", "tr", "wh", "qu"}
	asciiNuclei = [...]string{"a", "e", "i", "o", "u", "a", "e", "i", "o",
		"ai", "ea", "ee", "ou", "oo", "ie", "y"}
	asciiCodas = [...]string{"", "", "", "", "", "", "", "", "n", "r", "s", "t", "l", "m",
		"nd", "st", "ng", "ck", "rt", "x"}
	accentedNuclei = [...]string{"é", "è", "ê", "ë", "á", "à", "â", "ä", "í",
		"ï", "ó", "ô", "ö", "ú", "ü", "ø", "å", "æ", "ã", "õ"}
	accentedOnsets = [...]string{"ñ", "ç", "ž", "š", "ł", "ß"}
	cyrillic       = [...]string{"ка", "ло", "ми", "но", "ра", "ст", "ве",
		"ду", "жи", "зо", "щи", "ыр", "ёл", "ть", "пя", "бу", "го", "ше",
		"цы", "ю", "эх", "фа"}
	greek = [...]string{"κα", "λο", "μι", "νε", "ρα", "στ", "θε", "φι",
		"ψυ", "ωμ", "δε", "γη", "ξα", "ζω", "πο", "τι", "χρ", "βι", "ηλ",
		"ος"}
	cjk = [...]string{"東", "京", "北", "大", "山", "川", "人", "日", "本",
		"語", "中", "国", "学", "生", "水", "火", "木", "金", "土", "月",
		"雨", "花", "海", "空", "田", "森", "町", "村", "手", "心", "時"}
)

// maxFormLen bounds the byte length of a word form, so that a token always
// fits in the slack after a block's end.
const maxFormLen = 200

// entry locates the three forms of a word in vocab.arena: as written,
// capitalised, and in capitals, stored one after the other. The form as
// written, the one used most, is also kept in short if it fits, so that
// writing it touches no other memory.
type entry struct {
	short      [16]byte // the form as written if lo <= 16, zero-padded
	off        uint32
	lo, ti, up uint8
	proper     bool // always written capitalised
}

// aliasSlot is one slot of a Walker/Vose alias table: slot i is chosen
// uniformly, then it yields i if a uniform uint32 is below thresh, and alias
// otherwise.
type aliasSlot struct {
	thresh uint32
	alias  uint32
}

// vocab is the ranked vocabulary and its Zipf sampler. It is built once per
// Generate and only read afterwards, so blocks share it across goroutines.
type vocab struct {
	arena []byte
	words []entry // by rank: words[0] is the most frequent

	// slots holds the alias table of ranks [0, headLen) followed by
	// that of ranks [headLen, len(words)); aliases are absolute ranks.
	slots      []aliasSlot
	headLen    uint32
	headThresh uint32 // P(head) × 2^20
}

// headSize is the number of most frequent words sampled from the head
// table.
const headSize = 1024

func (v *vocab) lower(i int) []byte {
	e := &v.words[i]
	return v.arena[e.off : e.off+uint32(e.lo)]
}

// sample maps two uniform random values to a rank drawn from the Zipf
// distribution. The ranks are split into a head of the headSize most
// frequent words, which carries most of the probability and whose part of
// the tables stays in the L1 cache, and a tail; h (20 bits used) picks head
// or tail and r picks a rank within it from that part's alias table: the
// high 32 bits pick a slot, the low 32 bits choose between the slot and its
// alias. Alias sampling is O(1) and needs no floating point, which a
// sampler by inversion (such as math/rand's Zipf) would spend most of its
// time on. The choices are written so that the compiler makes them
// conditional moves: as branches they would be mispredicted half the time.
func (v *vocab) sample(r, h uint64) uint32 {
	off, size := uint64(0), uint64(v.headLen)
	if uint32(h&(1<<20-1)) >= v.headThresh {
		off, size = uint64(v.headLen), uint64(len(v.slots))-uint64(v.headLen)
	}
	i := off + ((r>>32)*size)>>32
	s := v.slots[i]
	k := s.alias
	if uint32(r) < s.thresh {
		k = uint32(i)
	}
	return k
}

func buildVocab(cfg *Config) *vocab {
	n := cfg.Vocabulary
	rng := rand.New(newRand(cfg.Seed, streamVocab, 0))
	v := &vocab{words: make([]entry, 0, n), arena: make([]byte, 0, n*24)}
	seen := make(map[string]struct{}, n)

	fixed := make(map[int]string)
	if cfg.NonASCII > 0 {
		for k, w := range realNonASCII {
			rank := 7 + 23*k
			if rank < n {
				fixed[rank] = w
				seen[strings.ToLower(w)] = struct{}{}
			}
		}
	}

	var sb strings.Builder
	for rank := 0; rank < n; rank++ {
		if w, ok := fixed[rank]; ok {
			v.add(w, false)
			continue
		}
		for attempt := 0; ; attempt++ {
			// Frequent words are short, rare words long, as in natural
			// language. Repeated collisions lengthen the word, so the
			// loop ends even for a vocabulary close to MaxVocabulary.
			syl := 1 + bits.Len(uint(rank))/6 + min(rank/32, 1)*(rng.IntN(3)/2) + attempt/4
			sb.Reset()
			if rng.Float64() < cfg.NonASCII {
				nonASCIIWord(&sb, rng, syl)
			} else {
				asciiWord(&sb, rng, syl)
			}
			w := sb.String()
			if len(w) > maxFormLen/3 {
				continue
			}
			key := strings.ToLower(w)
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			v.add(w, rng.IntN(50) == 0)
			break
		}
	}
	v.zipf(cfg.ZipfS)
	return v
}

// add appends word w, with its capitalised and upper-case forms.
func (v *vocab) add(w string, proper bool) {
	first, size := utf8.DecodeRuneInString(w)
	title := string(unicode.ToUpper(first)) + w[size:]
	upper := strings.ToUpper(w)
	if len(upper) > maxFormLen/3 {
		upper = title
	}
	e := entry{off: uint32(len(v.arena)), lo: uint8(len(w)), ti: uint8(len(title)), up: uint8(len(upper)), proper: proper}
	if len(w) <= len(e.short) {
		copy(e.short[:], w)
	}
	v.arena = append(v.arena, w...)
	v.arena = append(v.arena, title...)
	v.arena = append(v.arena, upper...)
	v.words = append(v.words, e)
}

func asciiWord(sb *strings.Builder, rng *rand.Rand, syl int) {
	for range syl {
		sb.WriteString(asciiOnsets[rng.IntN(len(asciiOnsets))])
		sb.WriteString(asciiNuclei[rng.IntN(len(asciiNuclei))])
		sb.WriteString(asciiCodas[rng.IntN(len(asciiCodas))])
	}
	if rng.IntN(100) == 0 { // letters and digits mixed: mp3, x86
		sb.WriteString(string(rune('0' + rng.IntN(10))))
		if rng.IntN(2) == 0 {
			sb.WriteString(string(rune('0' + rng.IntN(10))))
		}
	}
}

func nonASCIIWord(sb *strings.Builder, rng *rand.Rand, syl int) {
	switch k := rng.IntN(20); {
	case k < 8: // Latin with diacritics; the first syllable always has one
		for s := range syl {
			if rng.IntN(4) == 0 {
				sb.WriteString(accentedOnsets[rng.IntN(len(accentedOnsets))])
			} else {
				sb.WriteString(asciiOnsets[rng.IntN(len(asciiOnsets))])
			}
			if s == 0 || rng.IntN(2) == 0 {
				sb.WriteString(accentedNuclei[rng.IntN(len(accentedNuclei))])
			} else {
				sb.WriteString(asciiNuclei[rng.IntN(len(asciiNuclei))])
			}
			sb.WriteString(asciiCodas[rng.IntN(len(asciiCodas))])
		}
	case k < 13:
		for range syl + 1 {
			sb.WriteString(cyrillic[rng.IntN(len(cyrillic))])
		}
	case k < 16:
		for range syl + 1 {
			sb.WriteString(greek[rng.IntN(len(greek))])
		}
	default:
		for range syl + 1 {
			sb.WriteString(cjk[rng.IntN(len(cjk))])
		}
	}
}

// zipf builds the sampler of the distribution p(k) ∝ 1/(k+1)^s over the
// ranks k of the vocabulary.
func (v *vocab) zipf(s float64) {
	n := len(v.words)
	w := make([]float64, n)
	var sum, headSum float64
	k0 := min(n, headSize)
	for k := range w {
		w[k] = math.Pow(float64(k+1), -s)
		sum += w[k]
		if k < k0 {
			headSum += w[k]
		}
	}
	v.headThresh = uint32(min(math.Round(headSum/sum*(1<<20)), 1<<20))
	if k0 == n {
		v.headThresh = 1 << 20
	}
	v.headLen = uint32(k0)
	v.slots = append(aliasTable(w[:k0], 0), aliasTable(w[k0:], uint32(k0))...)
}

// aliasTable builds the alias table of the distribution proportional to
// the weights w, by Vose's method, with aliases offset by base. It
// overwrites w.
func aliasTable(w []float64, base uint32) []aliasSlot {
	n := len(w)
	if n == 0 {
		return nil
	}
	var sum float64
	for _, x := range w {
		sum += x
	}
	// Scale so that the mean weight is 1. The explicit conversions keep
	// the results identical on platforms that fuse multiply-adds.
	for k := range w {
		w[k] = float64(w[k] * float64(n) / sum)
	}
	slots := make([]aliasSlot, n)
	small := make([]int, 0, n)
	large := make([]int, 0, n)
	for k, x := range w {
		if x < 1 {
			small = append(small, k)
		} else {
			large = append(large, k)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		sm := small[len(small)-1]
		small = small[:len(small)-1]
		lg := large[len(large)-1]
		slots[sm] = aliasSlot{thresh: toThresh(w[sm]), alias: base + uint32(lg)}
		w[lg] = float64((w[lg] + w[sm]) - 1)
		if w[lg] < 1 {
			large = large[:len(large)-1]
			small = append(small, lg)
		}
	}
	// What is left has weight 1 up to rounding: it always yields itself.
	for _, k := range append(small, large...) {
		slots[k] = aliasSlot{thresh: math.MaxUint32, alias: base + uint32(k)}
	}
	return slots
}

func toThresh(x float64) uint32 {
	t := x * (1 << 32)
	if t >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(t)
}
