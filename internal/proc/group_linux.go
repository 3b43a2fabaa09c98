package proc

import (
	"bytes"
	"os"
	"strconv"
)

// groupWithoutLeader looks through /proc for a member of group pgid that
// has not exited. It runs only for a group whose leader is gone (guard's
// command, after guard itself was killed), so its cost is off every common
// path. It answers Dead only when it saw members and all of them were
// zombies; seeing none means it cannot see them (hidepid, another PID
// namespace's /proc), and the group counts as alive.
func groupWithoutLeader(pgid int) Liveness {
	if !procIsOurs() {
		return Unknown
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return Unknown
	}
	zombies := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(procRoot + "/" + e.Name() + "/stat") // #nosec G304 -- numeric procfs path
		if err != nil {
			continue
		}
		state, group, ok := stateAndGroup(b)
		if !ok || group != pgid {
			continue
		}
		if state == 'Z' || state == 'X' {
			zombies++
			continue
		}
		return Alive
	}
	if zombies > 0 {
		return Dead
	}
	return Unknown
}

// stateAndGroup reads fields 3 (state) and 5 (pgrp) of a /proc stat line.
func stateAndGroup(b []byte) (byte, int, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	g, err := strconv.Atoi(string(f[2]))
	return f[0][0], g, err == nil
}
