//go:build race

package testbin

// The binary under test is built with the race detector when the tests are,
// so races inside lokt show up in real-process tests too.
const raceEnabled = true
