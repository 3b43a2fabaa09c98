package lokt

import "time"

// EventType names a state change, as written in the audit log.
type EventType string

// Every event the protocol defines. The engine emits all but lost, which the
// guard reports when a renewal finds its lock gone.
const (
	EventAcquire      EventType = "acquire"
	EventRefresh      EventType = "refresh"
	EventRenew        EventType = "renew"
	EventRelease      EventType = "release"
	EventDeny         EventType = "deny"
	EventStaleBreak   EventType = "stale-break"
	EventAutoPrune    EventType = "auto-prune"
	EventForceBreak   EventType = "force-break"
	EventCorruptBreak EventType = "corrupt-break"
	EventLost         EventType = "lost"
	EventFreeze       EventType = "freeze"
	EventUnfreeze     EventType = "unfreeze"
	EventFreezeDeny   EventType = "freeze-deny"
)

// Actor is who caused an event.
type Actor struct {
	Identity
	Holder
}

// Event is one state change (or denial) of a lock or freeze.
type Event struct {
	Time time.Time
	Type EventType
	Name string
	// Actor is the process and labels that caused the event.
	Actor Actor
	// Lock is the lock concerned: the new one for acquire/refresh/renew, the
	// one removed for release and breaks, the one in the way for deny.
	Lock *Lock
	// Freeze is set for freeze, unfreeze and freeze-deny.
	Freeze *Freeze
	// Replaced is, for a freeze, another owner's freeze it replaced by
	// force.
	Replaced *Freeze
	// Reason says why, for breaks ("expired", "dead", the corruption) and
	// for lost.
	Reason string
}

// Emit reports an event through the Root's observer. Packages built on the
// engine (the guard) use it for events the engine cannot see, like lost.
func (r *Root) Emit(e Event) {
	if r.observe == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	r.observe(e)
}

func (r *Root) emitAll(events []Event) {
	for _, e := range events {
		r.Emit(e)
	}
}
