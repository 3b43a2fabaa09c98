package filestore

import (
	"testing"
	"time"
)

func mustLine(t *testing.T, s *Store, name string) (<-chan struct{}, func()) {
	t.Helper()
	first, leave, err := s.Line(lockKey(name))
	if err != nil {
		t.Fatal(err)
	}
	return first, leave
}

func waitTurn(t *testing.T, first <-chan struct{}, who string) {
	t.Helper()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never reached the head of the line", who)
	}
}

func notYet(t *testing.T, first <-chan struct{}, who string) {
	t.Helper()
	select {
	case <-first:
		t.Fatalf("%s is at the head while another is", who)
	case <-time.After(50 * time.Millisecond):
	}
}

// The line admits one head at a time; leaving hands the turn on, and so
// does a waiter that left before its turn came.
func TestLineOneHeadAtATime(t *testing.T) {
	s := openStore(t)
	first1, leave1 := mustLine(t, s, "x")
	waitTurn(t, first1, "the only waiter")

	first2, leave2 := mustLine(t, s, "x")
	first3, leave3 := mustLine(t, s, "x")
	notYet(t, first2, "the second waiter")
	notYet(t, first3, "the third waiter")

	// The second gives up before its turn: the third must not wait for it.
	leave2()
	leave1()
	waitTurn(t, first3, "the third waiter")
	leave3()

	// Lines of different names are independent.
	firstA, leaveA := mustLine(t, s, "a")
	firstB, leaveB := mustLine(t, s, "b")
	waitTurn(t, firstA, "a")
	waitTurn(t, firstB, "b")
	leaveA()
	leaveB()
	leaveB() // a second leave is harmless
}
