package puller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aptfleet/aptfleet/internal/wait"
)

// Marks that survive Redis losing its data.
//
// Every host remembers the broken marks it has seen (Deps.Marks, a file in
// state_dir), each stamped with the Guard's Epoch of the Redis data it was
// last seen in. The semaphore's guard tells when Redis lost the app/env's
// data or another Redis serves it: the Epoch changes. Then every mark this
// host remembers from an earlier epoch is put back (RestoreBroken: it never
// overwrites a mark in force). A mark remembered from the current epoch
// that Redis no longer holds was removed while Redis kept its data (an
// operator's unbreak): it is forgotten, not put back.
//
// Put back before any deploy starts: this host restores before it chooses a
// target (marks), and other hosts are held back by the pause the semaphore
// keeps for one lock_ttl after it found the data lost: a running agent that
// remembers marks checks the guard every lock_ttl/3 (watchGuard), so it has
// put them back before that pause ends and anyone is admitted, and an
// admitted host reads the mark again right before its first step, and only
// trusts that read if the Epoch has not changed since it chose its target
// (confirm). Bootstrap
// takes no slot, so it waits the pause out itself (waitForMarks).

// marksKey names an app/env in the host's memory of marks.
func marksKey(ar *appRun) string { return ar.Name + "/" + ar.Env }

// marks returns ar's broken marks, read consistently with the guard's Epoch
// (the Epoch is read before and after the marks and must not change in
// between), after putting back the marks this host remembers that Redis
// lost and forgetting those an operator removed.
func (a *Agent) marks(ctx context.Context, ar *appRun) (map[string]Broken, Guard, error) {
	lockKey := ar.Name + ":" + ar.Env
	var seen map[string]Broken
	var g Guard
	for attempt := 1; ; attempt++ {
		before, err := a.deps.Lock.Arm(ctx, lockKey)
		if err != nil {
			return nil, Guard{}, err
		}
		if seen, err = a.deps.State.Broken(ctx, ar.Name, ar.Env); err != nil {
			return nil, Guard{}, err
		}
		if g, err = a.deps.Lock.Arm(ctx, lockKey); err != nil {
			return nil, Guard{}, err
		}
		if g.Epoch == before.Epoch {
			break
		}
		if attempt == 3 {
			return nil, Guard{}, fmt.Errorf("read broken marks of %s/%s: Redis lost its data or changed 3 times in a row while they were read", ar.Name, ar.Env)
		}
	}
	ar.epoch = g.Epoch
	if a.deps.Marks == nil {
		return seen, g, nil
	}
	var restored map[string]Broken
	err := a.deps.Marks.UpdateMarks(marksKey(ar), func(mem map[string]SeenMark) (bool, error) {
		changed := false
		lost := map[string]Broken{}
		for v, m := range mem {
			if _, ok := seen[v]; ok {
				continue
			}
			if m.Epoch == g.Epoch {
				// Redis held it in this epoch and no longer does: removed
				// on purpose (unbreak), not lost.
				delete(mem, v)
				changed = true
				a.log.Info("broken mark removed from Redis; forgotten", "app", ar.Name, "env", ar.Env, "version", v)
				continue
			}
			lost[v] = m.Broken
		}
		if err := a.putBack(ctx, ar, lost); err != nil {
			return false, err
		}
		restored = lost
		for v, b := range seen {
			if m, ok := mem[v]; !ok || m.Epoch != g.Epoch || !sameMark(m.Broken, b) {
				mem[v] = SeenMark{Broken: b, Epoch: g.Epoch}
				changed = true
			}
		}
		for v, b := range lost {
			mem[v] = SeenMark{Broken: b, Epoch: g.Epoch}
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return nil, g, fmt.Errorf("remembered broken marks of %s/%s: %w", ar.Name, ar.Env, err)
	}
	if len(restored) > 0 {
		seen = maps.Clone(seen)
		if seen == nil {
			seen = map[string]Broken{}
		}
		maps.Copy(seen, restored)
	}
	return seen, g, nil
}

// restoreLost puts back, when the guard's Epoch g is not the one a
// remembered mark was last seen in, every such mark (the watch's and the
// idle check's path: it reads no marks from Redis; RestoreBroken keeps any
// mark in force).
func (a *Agent) restoreLost(ctx context.Context, ar *appRun, g Guard) error {
	if a.deps.Marks == nil {
		return nil
	}
	err := a.deps.Marks.UpdateMarks(marksKey(ar), func(mem map[string]SeenMark) (bool, error) {
		lost := map[string]Broken{}
		for v, m := range mem {
			if m.Epoch != g.Epoch {
				lost[v] = m.Broken
			}
		}
		if err := a.putBack(ctx, ar, lost); err != nil {
			return false, err
		}
		for v, b := range lost {
			mem[v] = SeenMark{Broken: b, Epoch: g.Epoch}
		}
		return len(lost) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("remembered broken marks of %s/%s: %w", ar.Name, ar.Env, err)
	}
	return nil
}

// putBack writes lost marks back to Redis.
func (a *Agent) putBack(ctx context.Context, ar *appRun, lost map[string]Broken) error {
	if len(lost) == 0 {
		return nil
	}
	if err := a.deps.State.RestoreBroken(ctx, ar.Name, ar.Env, lost); err != nil {
		return err
	}
	a.log.Warn("Redis lost broken marks this host remembers; put them back", "app", ar.Name, "env", ar.Env,
		"versions", slices.Sorted(maps.Keys(lost)))
	return nil
}

// rememberMark records a mark this host set: stamped with the Epoch its
// cycle read the marks in when the write landed (a loss since then changes
// the Epoch, so it is put back), with none when it did not (so it is written
// at the next check).
func (a *Agent) rememberMark(ar *appRun, version string, b Broken, written bool) {
	if a.deps.Marks == nil {
		return
	}
	m := SeenMark{Broken: b}
	if written {
		m.Epoch = ar.epoch
	}
	err := a.deps.Marks.UpdateMarks(marksKey(ar), func(mem map[string]SeenMark) (bool, error) {
		if old, ok := mem[version]; ok && old.Epoch != "" && written {
			return false, nil // seen in Redis already (another host's mark won)
		}
		mem[version] = m
		return true, nil
	})
	if err != nil {
		a.log.Error("remember broken mark", "app", ar.Name, "version", version, "err", err)
	}
}

// watchGuard checks, every lock_ttl/3 while the agent runs, the guard of
// every app/env for which this host remembers marks, and puts them back as
// soon as the Epoch shows that Redis lost them: well within the pause of one
// lock_ttl during which the semaphore admits nobody.
func (a *Agent) watchGuard(ctx context.Context) {
	if a.deps.Marks == nil {
		return
	}
	every := max(a.cfg.LockTTL/3, 10*time.Millisecond)
	failing := map[string]bool{}
	for {
		if wait.Sleep(ctx, every) != nil {
			return
		}
		for _, ar := range a.apps {
			err := a.checkGuard(ctx, ar)
			key := marksKey(ar)
			switch {
			case err != nil && !failing[key] && ctx.Err() == nil:
				a.log.Warn("guard check failed; retrying", "app", ar.Name, "env", ar.Env, "err", err)
				failing[key] = true
			case err == nil && failing[key]:
				a.log.Info("guard check recovered", "app", ar.Name, "env", ar.Env)
				failing[key] = false
			}
		}
	}
}

// checkGuard arms ar's guard and puts back lost marks, when this host
// remembers any.
func (a *Agent) checkGuard(ctx context.Context, ar *appRun) error {
	mem, err := a.deps.Marks.Marks(marksKey(ar))
	if err != nil || len(mem) == 0 {
		return err
	}
	g, err := a.deps.Lock.Arm(ctx, ar.Name+":"+ar.Env)
	if err != nil {
		return err
	}
	return a.restoreLost(ctx, ar, g)
}

// confirm reads target's mark right before a deploy's first step, and
// makes sure Redis kept its data since the target was chosen (the guard's
// Epoch is still the one the marks were read under): a host admitted just
// before a loss would otherwise read the mark just after it, gone. It
// returns errTargetBroken or errEpochChanged; either way nothing was
// installed, and the cycle decides again.
func (a *Agent) confirm(ctx context.Context, ar *appRun, target string) error {
	b, err := a.deps.State.IsBroken(ctx, ar.Name, ar.Env, target)
	if err != nil {
		return err
	}
	if b != nil {
		return errTargetBroken
	}
	g, err := a.deps.Lock.Arm(ctx, ar.Name+":"+ar.Env)
	if err != nil {
		return err
	}
	if g.Epoch != ar.epoch {
		return errEpochChanged
	}
	return nil
}

// waitForMarks is bootstrap's stand-in for the semaphore's pause: when the
// guard shows that Redis just lost its data (or this is the fleet's first
// use: the two look alike), the marks in Redis may be incomplete until the
// hosts that remember them have put them back, which they do within the
// pause. Bootstrap takes no slot, so it waits the pause out before it
// chooses a version.
func (a *Agent) waitForMarks(ctx context.Context, ar *appRun) error {
	_, g, err := a.marks(ctx, ar)
	if err != nil || g.Pause <= 0 {
		return err
	}
	a.log.Info("Redis lost its data or is new: waiting for remembered broken marks to be put back before choosing a version",
		"app", ar.Name, "env", ar.Env, "wait", g.Pause.Round(time.Millisecond))
	return wait.Sleep(ctx, g.Pause)
}

func sameMark(a, b Broken) bool {
	return a.Reason == b.Reason && a.Host == b.Host && a.At.Equal(b.At)
}
