package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aptfleet/aptfleet/internal/wait"
)

// The retention protocol (docs/architecture.md, "Retention protocol"):
// a change that is about to reference objects its dist did not reference
// holds them in the ledger first; prune claims the objects it is about to
// delete in the same ledger, and never claims a held one. Both writes are
// conditional on the ledger's ETag, so a hold and a claim of one object
// cannot both succeed unseen by the other.
const (
	// ledgerKey holds the holds, claims and deletions; every change that
	// references new objects and every pruner writes it.
	ledgerKey = "retention/ledger.json"
	// marksKey records when prune first saw each object unreferenced; only
	// prune writes it, and safety does not depend on it.
	marksKey = "retention/marks.json"
)

// Step reported to Repo.AfterStep by a change.
const (
	StepHold = "hold" // the objects the commit will newly reference are held
)

// ledger is the shared retention state. Times are the writer's clock.
type ledger struct {
	// Holds: object key -> when a change held it. The change commits within
	// Window of that time or holds again; prune treats a hold as live for
	// 3 x Window.
	Holds map[string]time.Time `json:"holds,omitempty"`
	// Claims: object key -> when a pruner claimed it. The pruner deletes
	// only within Window of that time; changes treat a claim as live for
	// 3 x Window, or until the pruner records the deletion.
	Claims map[string]time.Time `json:"claims,omitempty"`
	// Deleted: object key -> when a pruner finished deleting it. A change
	// that finds one of its objects here re-uploads or re-checks it.
	Deleted map[string]time.Time `json:"deleted,omitempty"`
}

func (l *ledger) init() {
	if l.Holds == nil {
		l.Holds = map[string]time.Time{}
	}
	if l.Claims == nil {
		l.Claims = map[string]time.Time{}
	}
	if l.Deleted == nil {
		l.Deleted = map[string]time.Time{}
	}
}

// gc drops entries nobody can still need: older than 5 x window.
func (l *ledger) gc(now time.Time, window time.Duration) {
	for _, m := range []map[string]time.Time{l.Holds, l.Claims, l.Deleted} {
		maps.DeleteFunc(m, func(_ string, t time.Time) bool { return now.Sub(t) > 5*window })
	}
}

// readLedger returns the ledger and its ETag ("" when there is none yet).
func readLedger(ctx context.Context, s Store) (*ledger, string, error) {
	data, o, err := getAll(ctx, s, ledgerKey)
	if errors.Is(err, ErrNotFound) {
		l := &ledger{}
		l.init()
		return l, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", ledgerKey, err)
	}
	l := &ledger{}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, "", fmt.Errorf("%s: %w", ledgerKey, err)
	}
	l.init()
	return l, o.ETag, nil
}

// writeLedger replaces the ledger if it still has etag.
func writeLedger(ctx context.Context, s Store, l *ledger, etag string) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	_, err = s.Put(ctx, ledgerKey, bytes.NewReader(data), int64(len(data)),
		PutOptions{IfMatch: etag, IfNoneMatch: etag == "", ContentType: "application/json"})
	if err != nil {
		return fmt.Errorf("write %s: %w", ledgerKey, err)
	}
	return nil
}

// editLedger applies fn to the current ledger and writes it back,
// re-reading and re-applying on a concurrent write. fn returning
// errRetryLater makes it wait and try again.
func (r *Repo) editLedger(ctx context.Context, fn func(l *ledger, now time.Time) (bool, error)) error {
	cfg := r.config()
	for attempt := 1; ; attempt++ {
		l, etag, err := readLedger(ctx, r.Store)
		if err != nil {
			return err
		}
		now := r.now()
		write, err := fn(l, now)
		if errors.Is(err, errWait) {
			if err := wait.Sleep(ctx, min(cfg.Window/10, time.Second)); err != nil {
				return err
			}
			attempt = 0
			continue
		}
		if err != nil || !write {
			return err
		}
		l.gc(now, cfg.Window)
		err = writeLedger(ctx, r.Store, l, etag)
		// A write whose answer was lost is read again and redone: holds
		// and claims written twice mean the same.
		if !errors.Is(err, ErrPrecondition) && (!errors.Is(err, ErrUnknownOutcome) || ctx.Err() != nil) {
			return err
		}
		if attempt >= cfg.Attempts {
			return fmt.Errorf("%w: %s changed under %d attempts in a row", ErrContention, ledgerKey, attempt)
		}
		limit := min(cfg.Backoff<<min(attempt-1, 20), cfg.MaxBackoff)
		if err := wait.Sleep(ctx, time.Duration(rand.Int64N(int64(limit))+1)); err != nil {
			return err
		}
	}
}

// errWait: an object is claimed by a pruner; wait for it.
var errWait = errors.New("repo: wait for a pruner")

// hold records keys as about to be referenced, after waiting for any live
// claim on them to end. It returns the keys a pruner may have deleted
// (claimed or deleted within the ledger's memory), which the caller must
// store again or check, and the hold's time.
func (r *Repo) hold(ctx context.Context, keys []string) (gone []string, at time.Time, err error) {
	if len(keys) == 0 {
		return nil, r.now(), nil
	}
	window := r.config().Window
	waited := map[string]bool{}
	logged := false
	err = r.editLedger(ctx, func(l *ledger, now time.Time) (bool, error) {
		for _, k := range keys {
			if c, ok := l.Claims[k]; ok && now.Sub(c) < 3*window {
				waited[k] = true
				if !logged {
					r.log().Info("waiting for a prune that is deleting an object this change references", "key", k)
					logged = true
				}
				return false, errWait
			}
		}
		gone = gone[:0]
		for _, k := range keys {
			_, claimed := l.Claims[k]
			_, deleted := l.Deleted[k]
			if claimed || deleted || waited[k] {
				gone = append(gone, k)
			}
			delete(l.Claims, k)
			l.Holds[k] = now
		}
		at = now
		return true, nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("hold: %w", err)
	}
	r.step(StepHold)
	return gone, at, nil
}

// marks is prune's record of when it first saw objects unreferenced.
type marks struct {
	Unreferenced map[string]time.Time `json:"unreferenced"`
}

func readMarks(ctx context.Context, s Store) (*marks, string, error) {
	m := &marks{}
	data, o, err := getAll(ctx, s, marksKey)
	if errors.Is(err, ErrNotFound) {
		m.Unreferenced = map[string]time.Time{}
		return m, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", marksKey, err)
	}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, "", fmt.Errorf("%s: %w", marksKey, err)
	}
	if m.Unreferenced == nil {
		m.Unreferenced = map[string]time.Time{}
	}
	return m, o.ETag, nil
}

// writeMarks replaces the stored marks with seen (key -> first seen
// unreferenced), keeping the earlier time of a key both have.
func (r *Repo) writeMarks(ctx context.Context, seen map[string]time.Time) error {
	for attempt := 1; attempt <= 10; attempt++ {
		m, etag, err := readMarks(ctx, r.Store)
		if err != nil {
			return err
		}
		next := map[string]time.Time{}
		for k, t := range seen {
			if old, ok := m.Unreferenced[k]; ok && old.Before(t) {
				t = old
			}
			next[k] = t
		}
		m.Unreferenced = next
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = r.Store.Put(ctx, marksKey, bytes.NewReader(data), int64(len(data)),
			PutOptions{IfMatch: etag, IfNoneMatch: etag == "", ContentType: "application/json"})
		if !errors.Is(err, ErrPrecondition) {
			if err != nil {
				return fmt.Errorf("write %s: %w", marksKey, err)
			}
			return nil
		}
	}
	return nil // another pruner wrote them; a missing mark only delays a deletion
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
