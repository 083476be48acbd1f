package textgen

import (
	"math"
	"math/bits"
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

// englishHead are common English words, most frequent first, which take
// the top ranks of every vocabulary so that a corpus's most frequent words
// look like a real text's (the, of, and, ...) rather than pseudo-words.
// The pseudo-words follow them.
var englishHead = [...]string{
	"the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he",
	"was", "for", "on", "are", "with", "as", "his", "they", "be", "at", "one",
	"have", "this", "from", "or", "had", "by", "not", "word", "but", "what",
	"some", "we", "can", "out", "other", "were", "all", "there", "when", "up",
	"use", "your", "how", "said", "an", "each", "she", "which", "do", "their",
	"time", "if", "will", "way", "about", "many", "then", "them", "write",
	"would", "like", "so", "these", "her", "long", "make", "thing", "see",
	"him", "two", "has", "look", "more", "day", "could", "go", "come", "did",
	"number", "sound", "no", "most", "people", "my", "over", "know", "water",
	"than", "call", "first", "who", "may", "down", "side", "been", "now",
	"find", "any", "new", "work", "part", "take", "get", "place", "made",
	"live", "where", "after", "back", "little", "only", "round", "man",
	"year", "came", "show", "every", "good", "me", "give", "our", "under",
	"name", "very", "through", "just", "form", "sentence", "great", "think",
	"say", "help", "low", "line", "differ", "turn", "cause", "much", "mean",
	"before", "move", "right", "boy", "old", "too", "same", "tell", "does",
	"set", "three", "want", "air", "well", "also", "play", "small", "end",
	"put", "home", "read", "hand", "port", "large", "spell", "add", "even",
	"land", "here", "must", "big", "high", "such", "follow", "act", "why",
	"ask", "men", "change", "went", "light", "kind", "off", "need", "house",
	"picture", "try", "us", "again", "animal", "point", "mother", "world",
	"near", "build", "self", "earth", "father", "head", "stand", "own",
	"page", "should", "country", "found", "answer", "school", "grow", "study",
	"still", "learn", "plant", "cover", "food", "sun", "four", "between",
	"state", "keep", "eye", "never", "last", "let", "thought", "city", "tree",
	"cross", "farm", "hard", "start", "might", "story", "saw", "far", "sea",
	"draw", "left", "late", "run", "while", "press", "close", "night", "real",
	"life", "few", "north",
}

// realNonASCII are real words placed at fixed ranks among the first
// thousand, after englishHead, so that even small corpora contain them.
// Some carry capitals of their own (Ωmega, İstanbul, Ελλάδα).
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

// maxFormLen bounds the byte length of each form of a word, so that a
// token always fits in the slack after a block's end.
const maxFormLen = 64

// entry locates the three forms of a word in vocab.arena: as written,
// capitalised, and in capitals, stored one after the other.
type entry struct {
	off        uint32
	lo, ti, up uint8
	proper     bool // always written capitalised
}

// aliasSlot is one slot of a Walker/Vose alias table: slot i is chosen
// uniformly, then it yields rank i if a uniform uint32 is below thresh, and
// rank alias otherwise. The slot also carries the two words it may yield
// (in forms[0] for rank i, forms[1] for rank alias) when they fit, so that
// drawing a word costs one memory access: the slot is 32 bytes, within one
// cache line when the table is (as large allocations are) aligned, and
// most words need nothing else.
type aliasSlot struct {
	thresh uint32
	alias  uint32
	forms  [2]inlineForm
}

// inlineForm holds the usual form of a word of at most inlineMax bytes,
// zero-padded: capitalised for a proper noun, as written otherwise. Its
// last byte holds the form's length (inlineLen bits; 0 if the word does not
// fit and must be read from the arena) and a flag saying how to capitalise
// it at the start of a sentence: inlineCapASCII if that means turning its
// first byte from ASCII lower to upper case, inlineCapSame if it is
// unchanged (proper nouns, numbers, scripts without case). With neither
// flag, the capitalised form is read from the arena.
type inlineForm [12]byte

const (
	inlineMax      = len(inlineForm{}) - 1
	inlineLen      = 0x3f
	inlineCapSame  = 0x40
	inlineCapASCII = 0x80
)

// vocab is the ranked vocabulary and its Zipf sampler. It is built once per
// Generate and only read afterwards, so blocks share it across goroutines.
type vocab struct {
	arena []byte
	words []entry // by rank: words[0] is the most frequent

	// slots holds the alias table of ranks [0, headLen) followed by
	// that of ranks [headLen, len(words)); slot i belongs to rank i and
	// aliases are absolute ranks.
	slots      []aliasSlot
	headLen    uint32
	headThresh uint32 // P(head) × 2^20
}

// lower returns the form as written of the word of rank i.
func (v *vocab) lower(i int) []byte {
	e := &v.words[i]
	return v.arena[e.off : e.off+uint32(e.lo)]
}

// headSize is the number of most frequent words sampled from the head
// table.
const headSize = 1024

// sample maps two uniform random values to a draw from the Zipf
// distribution, returned as a choice: slot<<1 | 1 if the slot's alias was
// chosen. The ranks are split into a head of the headSize most frequent
// words, which carries most of the probability and whose slots stay in the
// L1 cache, and a tail; h (20 bits used) picks head or tail and r picks a
// rank within it from that part's alias table: the high 32 bits pick a
// slot, the low 32 bits choose between the slot and its alias. Alias
// sampling is O(1) and needs no floating point, which a sampler by
// inversion (such as math/rand's Zipf) would spend most of its time on.
// The choices are written so that the compiler makes them conditional
// moves: as branches they would be mispredicted half the time.
func (v *vocab) sample(r, h uint64) uint32 {
	off, size := uint64(0), uint64(v.headLen)
	if uint32(h&(1<<20-1)) >= v.headThresh {
		off, size = uint64(v.headLen), uint64(len(v.slots))-uint64(v.headLen)
	}
	i := off + ((r>>32)*size)>>32
	c := uint32(i)<<1 | 1
	if uint32(r) < v.slots[i].thresh {
		c = uint32(i) << 1
	}
	return c
}

// rank returns the rank of a choice made by sample.
func (v *vocab) rank(c uint32) uint32 {
	if c&1 == 0 {
		return c >> 1
	}
	return v.slots[c>>1].alias
}

func buildVocab(cfg *Config) *vocab {
	n := cfg.Vocabulary
	rng := vrand{newWyrand(cfg.Seed, streamVocab, 0)}
	v := &vocab{words: make([]entry, 0, n), arena: make([]byte, 0, n*24)}
	// Synthetic words are built from lower-case parts, so they are their
	// own lower-case keys; the real words, some with capitals, are
	// registered by their lower-case form.
	seen := make(map[string]struct{}, n)
	fixed := make(map[int]string)
	for rank, w := range englishHead {
		if rank < n {
			fixed[rank] = w
			seen[w] = struct{}{}
		}
	}
	if cfg.NonASCII > 0 {
		for k, w := range realNonASCII {
			rank := len(englishHead) + 7 + 17*k
			if rank < n {
				fixed[rank] = w
				seen[strings.ToLower(w)] = struct{}{}
			}
		}
	}

	buf := make([]byte, 0, 64)
	for rank := 0; rank < n; rank++ {
		if w, ok := fixed[rank]; ok {
			v.add([]byte(w), false)
			continue
		}
		for attempt := 0; ; attempt++ {
			// Frequent words are short, rare words long, as in natural
			// language. Repeated collisions lengthen the word, so the
			// loop ends even for a vocabulary close to MaxVocabulary. Eight
			// syllables of any kind stay within maxFormLen.
			syl := min(1+bits.Len(uint(rank))/7+min(rank/32, 1)*(rng.intn(3)/2)+attempt/4, 8)
			if rng.float64() < cfg.NonASCII {
				buf = nonASCIIWord(buf[:0], &rng, syl)
			} else {
				buf = asciiWord(buf[:0], &rng, syl)
			}
			if len(buf) > maxFormLen {
				continue
			}
			if _, dup := seen[string(buf)]; dup {
				continue
			}
			seen[string(buf)] = struct{}{}
			v.add(buf, rng.intn(50) == 0)
			break
		}
	}
	// Padding, so that forms can be copied in 8-byte moves.
	v.arena = append(v.arena, make([]byte, 8)...)
	v.zipf(cfg.ZipfS)
	return v
}

// add appends word w, with its capitalised and upper-case forms.
func (v *vocab) add(w []byte, proper bool) {
	e := entry{off: uint32(len(v.arena)), lo: uint8(len(w)), proper: proper}
	v.arena = append(v.arena, w...)
	first, size := utf8.DecodeRune(w)
	start := len(v.arena)
	v.arena = utf8.AppendRune(v.arena, unicode.ToUpper(first))
	v.arena = append(v.arena, w[size:]...)
	e.ti = uint8(len(v.arena) - start)
	start = len(v.arena)
	for _, r := range string(w) {
		v.arena = utf8.AppendRune(v.arena, unicode.ToUpper(r))
	}
	if len(v.arena)-start > maxFormLen { // use the capitalised form
		v.arena = append(v.arena[:start], v.arena[start-int(e.ti):start]...)
	}
	e.up = uint8(len(v.arena) - start)
	v.words = append(v.words, e)
}

// vrand draws the vocabulary's random choices.
type vrand struct{ wyrand }

// intn returns a uniform int in [0, n), n < 2^32, by multiply-shift.
func (r *vrand) intn(n int) int {
	return int((r.next() >> 32) * uint64(n) >> 32)
}

// float64 returns a uniform float64 in [0, 1).
func (r *vrand) float64() float64 {
	return float64(r.next()>>11) / (1 << 53)
}

func asciiWord(b []byte, rng *vrand, syl int) []byte {
	for range syl {
		b = append(b, asciiOnsets[rng.intn(len(asciiOnsets))]...)
		b = append(b, asciiNuclei[rng.intn(len(asciiNuclei))]...)
		b = append(b, asciiCodas[rng.intn(len(asciiCodas))]...)
	}
	if rng.intn(100) == 0 { // letters and digits mixed: mp3, x86
		b = append(b, byte('0'+rng.intn(10)))
		if rng.intn(2) == 0 {
			b = append(b, byte('0'+rng.intn(10)))
		}
	}
	return b
}

func nonASCIIWord(b []byte, rng *vrand, syl int) []byte {
	switch k := rng.intn(20); {
	case k < 8: // Latin with diacritics; the first syllable always has one
		for s := range syl {
			if rng.intn(4) == 0 {
				b = append(b, accentedOnsets[rng.intn(len(accentedOnsets))]...)
			} else {
				b = append(b, asciiOnsets[rng.intn(len(asciiOnsets))]...)
			}
			if s == 0 || rng.intn(2) == 0 {
				b = append(b, accentedNuclei[rng.intn(len(accentedNuclei))]...)
			} else {
				b = append(b, asciiNuclei[rng.intn(len(asciiNuclei))]...)
			}
			b = append(b, asciiCodas[rng.intn(len(asciiCodas))]...)
		}
	case k < 13:
		for range syl + 1 {
			b = append(b, cyrillic[rng.intn(len(cyrillic))]...)
		}
	case k < 16:
		for range syl + 1 {
			b = append(b, greek[rng.intn(len(greek))]...)
		}
	default:
		for range syl + 1 {
			b = append(b, cjk[rng.intn(len(cjk))]...)
		}
	}
	return b
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
	for i := range v.slots {
		s := &v.slots[i]
		v.inline(&s.forms[0], uint32(i))
		v.inline(&s.forms[1], s.alias)
	}
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

// inline stores the usual form of rank r in f, if it fits.
func (v *vocab) inline(f *inlineForm, r uint32) {
	e := &v.words[r]
	lower := v.arena[e.off : e.off+uint32(e.lo)]
	title := v.arena[e.off+uint32(e.lo) : e.off+uint32(e.lo)+uint32(e.ti)]
	usual := lower
	if e.proper {
		usual = title
	}
	if len(usual) > inlineMax {
		return
	}
	copy(f[:], usual)
	f[inlineMax] = byte(len(usual))
	switch {
	case e.proper || string(lower) == string(title):
		f[inlineMax] |= inlineCapSame
	case 'a' <= lower[0] && lower[0] <= 'z' && lower[0]-('a'-'A') == title[0] && string(lower[1:]) == string(title[1:]):
		f[inlineMax] |= inlineCapASCII
	}
}

func toThresh(x float64) uint32 {
	t := x * (1 << 32)
	if t >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(t)
}
