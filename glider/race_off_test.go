//go:build !race

package glider

const raceEnabled = false
