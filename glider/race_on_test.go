//go:build race

package glider

// raceEnabled shrinks the largest test streams: the race detector slows
// byte copying several times over.
const raceEnabled = true
