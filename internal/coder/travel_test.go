package coder

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct{ A int }

type travelOK struct {
	N     int
	S     []string
	M     map[string]float64
	P     *inner
	inner           // promoted by encoding/json
	_     [0]func() // holds nothing
	When  time.Time
}

type hidesField struct {
	N int
	n int
}

type nested struct{ In []hidesField }

type hasChan struct{ C chan int }

type hasAny struct{ V any }

type tagged struct {
	N int `json:"-"`
}

func TestCheckJSON(t *testing.T) {
	if err := CheckJSON(reflect.TypeFor[travelOK]()); err != nil {
		t.Errorf("travelOK: %v", err)
	}
	for _, c := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[hidesField](), "unexported field n"},
		{reflect.TypeFor[nested](), "nested.In: "},
		{reflect.TypeFor[hasChan](), "chan"},
		{reflect.TypeFor[hasAny](), "interface"},
		{reflect.TypeFor[tagged](), `json:"-"`},
	} {
		err := CheckJSON(c.t)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error mentioning %q", c.t, err, c.want)
		}
	}
}

func TestCheckGob(t *testing.T) {
	if err := CheckGob(reflect.TypeFor[hasAny]()); err != nil {
		t.Errorf("gob carries registered interface values: %v", err)
	}
	if err := CheckGob(reflect.TypeFor[hasChan]()); err == nil {
		t.Error("gob drops channel fields")
	}
	if err := CheckGob(reflect.TypeFor[hidesField]()); err == nil {
		t.Error("gob drops unexported fields")
	}
}

func TestRoundTripJSON(t *testing.T) {
	enc, back, err := RoundTripJSON(travelOK{N: 3, S: []string{"a"}, P: &inner{2}, When: time.Unix(5, 0).UTC()})
	if err != nil || !strings.Contains(string(enc), `"N":3`) || back.(travelOK).P.A != 2 {
		t.Errorf("RoundTripJSON = %s, %v, %v", enc, back, err)
	}
	if _, _, err := RoundTripJSON(hidesField{N: 1, n: 2}); err == nil {
		t.Error("a value with an unexported field round-tripped")
	}
}
