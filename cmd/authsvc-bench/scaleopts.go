package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scaleOptions are the flags of the scale scenario.
type scaleOptions struct {
	rate          float64
	zipfS         float64
	deadline      time.Duration
	wachtLatency  time.Duration
	wachtRPM      int
	replicaRPM    int
	changeEvery   time.Duration
	revokeEvery   time.Duration
	tokenEvery    time.Duration
	probeLimit    time.Duration
	warmCalls     int
	replicaCounts []int
	starts        []string
	replicaEnv    map[string]string
}

// The scale scenario's defaults for the flags it shares with the others.
const (
	scaleUsers    = 20_000
	scaleDuration = 4 * time.Minute
	scaleWarmup   = 15 * time.Second
)

// Starts of the scale scenario.
const (
	startCold = "cold"
	startWarm = "warm"
)

func (s *scaleOptions) register(fs *flag.FlagSet) (replicas, starts, env *string) {
	fs.Float64Var(&s.rate, "rate", 300, "scale: calls a second, arriving open loop (Poisson): 40% VerifySession, 40% GetUser, 20% ListSessions")
	fs.Float64Var(&s.zipfS, "zipf-s", 1.07, "scale: exponent of the Zipf distribution of users over calls, changes and sign-outs (> 1)")
	fs.DurationVar(&s.deadline, "deadline", 2*time.Second, "scale: each call's deadline")
	fs.DurationVar(&s.wachtLatency, "wacht-latency", 80*time.Millisecond, "scale: latency the emulator adds to every Backend API request")
	fs.IntVar(&s.wachtRPM, "wacht-rpm", 1000, "scale: the deployment's Backend API budget, which the emulator enforces with 429s")
	fs.IntVar(&s.replicaRPM, "replica-rpm", 0,
		"scale: AUTHSVC_WACHT_REQUESTS_PER_MINUTE given to every replica; 0 leaves authsvc's default")
	fs.DurationVar(&s.changeEvery, "change-every", 500*time.Millisecond, "scale: a user change (user.updated webhook) this often")
	fs.DurationVar(&s.revokeEvery, "revoke-every", 2*time.Second, "scale: a sign-out (session.deleted webhook) this often")
	fs.DurationVar(&s.tokenEvery, "token-every", 25*time.Second, "scale: a user's session token is re-minted when it is this old")
	fs.DurationVar(&s.probeLimit, "probe-limit", 10*time.Second, "scale: how long a change or sign-out is watched for before it counts as not seen")
	fs.IntVar(&s.warmCalls, "warm-concurrency", 64, "scale: calls in flight while the warm start reads every user once")
	replicas = fs.String("replicas", "1,3", "scale: replica counts to run, comma-separated; the replicas of a run share one database")
	starts = fs.String("starts", "cold,warm", "scale: starts to run: cold (an empty cache), warm (every user read once with an ample budget, then the replicas restarted)")
	env = fs.String("replica-env", "", "scale: extra environment of every replica, as NAME=value pairs, comma-separated (such as AUTHSVC_USER_TTL=1h)")
	return replicas, starts, env
}

// parse checks the scale flags and applies the scale defaults to the
// shared flags not given.
func (s *scaleOptions) parse(o *options, set map[string]bool, replicas, starts, env string) error {
	if !set["users"] {
		o.users = scaleUsers
	}
	if !set["duration"] {
		o.duration = scaleDuration
	}
	if !set["warmup"] {
		o.warmup = scaleWarmup
	}
	for f := range strings.SplitSeq(replicas, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return fmt.Errorf("-replicas: %q is not a replica count from 1 to 16", f)
		}
		s.replicaCounts = append(s.replicaCounts, n)
	}
	for f := range strings.SplitSeq(starts, ",") {
		f = strings.TrimSpace(f)
		if f != startCold && f != startWarm {
			return fmt.Errorf("-starts: %q is neither cold nor warm", f)
		}
		if !slices.Contains(s.starts, f) {
			s.starts = append(s.starts, f)
		}
	}
	s.replicaEnv = map[string]string{}
	for f := range strings.SplitSeq(env, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || k == "" {
			return fmt.Errorf("-replica-env: %q is not NAME=value", f)
		}
		s.replicaEnv[k] = v
	}
	switch {
	case s.rate <= 0 || s.zipfS <= 1:
		return errors.New("-rate must be positive and -zipf-s above 1")
	case s.deadline <= 0 || s.wachtLatency < 0 || s.changeEvery <= 0 || s.revokeEvery <= 0 || s.tokenEvery <= 0 || s.probeLimit <= 0:
		return errors.New("-deadline, -change-every, -revoke-every, -token-every and -probe-limit must be positive, -wacht-latency not negative")
	case s.wachtRPM < 1 || s.replicaRPM < 0 || s.warmCalls < 1:
		return errors.New("-wacht-rpm and -warm-concurrency must be positive, -replica-rpm not negative")
	}
	return nil
}
