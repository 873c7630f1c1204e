// Package budget spends the deployment's Wacht Backend API request budget, shared by every replica, by class of call.
package budget

import (
	"context"
	"time"
)

// Class is why a Wacht call is made. Classes are admitted by priority:
// a lower Class value goes first, and the lowest classes keep a reserve
// that the ones below them cannot spend.
type Class uint8

// Classes, highest priority first.
const (
	// Write is a call that changes state in Wacht: RevokeSession, key
	// rotations and their scheduled revocations.
	Write Class = iota
	// Foreground is a load of what is not cached at all, for a caller
	// waiting on it. It is the class of a context without one.
	Foreground
	// Revocation is a reload made to check that a session was not
	// revoked (check_revocation), for a caller waiting on it.
	Revocation
	// Refresh is a background refresh of something already cached.
	Refresh

	numClasses = iota
)

// Classes lists every class, highest priority first.
var Classes = [numClasses]Class{Write, Foreground, Revocation, Refresh}

// String returns the class's name as used in metrics and logs.
func (c Class) String() string {
	switch c {
	case Write:
		return "write"
	case Foreground:
		return "foreground"
	case Revocation:
		return "revocation"
	case Refresh:
		return "refresh"
	}
	return "unknown"
}

// classKey is the context key of a call's class.
type classKey struct{}

// WithClass returns a copy of ctx whose Wacht calls are made as class c.
func WithClass(ctx context.Context, c Class) context.Context {
	return context.WithValue(ctx, classKey{}, c)
}

// ClassFrom returns the class that ctx carries, [Foreground] if none.
func ClassFrom(ctx context.Context) Class {
	if c, ok := ctx.Value(classKey{}).(Class); ok && c < numClasses {
		return c
	}
	return Foreground
}

// callerDeadlineKey is the context key of the deadline of the caller a
// call is made for.
type callerDeadlineKey struct{}

// WithCallerDeadline returns a copy of ctx whose Wacht calls are admitted
// only with time left for Wacht to answer before deadline, the deadline of
// the caller they are made for. It matters where ctx outlives that caller,
// as the load a cache shares among the callers that missed together does:
// the load may finish for the others, but is not sent when the caller it
// was started for could no longer get its answer.
func WithCallerDeadline(ctx context.Context, deadline time.Time) context.Context {
	return context.WithValue(ctx, callerDeadlineKey{}, deadline)
}

// deadlineOf returns the earlier of ctx's deadline and its caller's (see
// [WithCallerDeadline]), and false if it has neither.
func deadlineOf(ctx context.Context) (time.Time, bool) {
	dl, ok := ctx.Deadline()
	if cd, has := ctx.Value(callerDeadlineKey{}).(time.Time); has && (!ok || cd.Before(dl)) {
		return cd, true
	}
	return dl, ok
}
