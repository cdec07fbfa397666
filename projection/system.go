package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// System wires applications into pipes, each a follower processing the events of a leader with its
// Policy, and runs them together, as the System of the Python eventsourcing library does. Each pipe
// is a process runner (NewProcess) with its own tracking, so pipes progress independently, a follower
// may follow several leaders and lead other followers in turn, and a restarted system resumes every
// pipe where it stopped.
type System struct {
	mu      sync.Mutex
	apps    map[string]Application
	pipes   []*pipe
	started bool
}

type pipe struct {
	follower, leader string
	runner           *Runner[*Processing]
}

// NewSystem returns an empty System.
func NewSystem() *System { return &System{apps: make(map[string]Application)} }

// Add adds applications to the system. Names must be unique.
func (s *System) Add(apps ...Application) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("projection: system: Add after Run")
	}
	for _, a := range apps {
		if _, err := a.recorder(); err != nil {
			return fmt.Errorf("projection: system: add: %w", err)
		}
		if _, dup := s.apps[a.Name]; dup {
			return fmt.Errorf("projection: system: add: an application named %q is already in the system", a.Name)
		}
		s.apps[a.Name] = a
	}
	return nil
}

// Follow makes follower process the events of leader (only those of topics, when given) with its
// Policy. Both must have been added; the follower needs a Policy and a ProcessRecorder.
func (s *System) Follow(follower, leader string, opts ...Option) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("projection: system: Follow after Run")
	}
	f, ok := s.apps[follower]
	if !ok {
		return fmt.Errorf("projection: system: follow: no application named %q", follower)
	}
	l, ok := s.apps[leader]
	if !ok {
		return fmt.Errorf("projection: system: follow: no application named %q", leader)
	}
	if s.pipe(follower, leader) != nil {
		return fmt.Errorf("projection: system: %q follows %q already", follower, leader)
	}
	r, err := NewProcess(f, l, opts...)
	if err != nil {
		return fmt.Errorf("projection: system: %w", err)
	}
	s.pipes = append(s.pipes, &pipe{follower: follower, leader: leader, runner: r})
	return nil
}

func (s *System) pipe(follower, leader string) *pipe {
	for _, p := range s.pipes {
		if p.follower == follower && p.leader == leader {
			return p
		}
	}
	return nil
}

// Run runs every pipe, each in its own goroutine, until ctx ends (it returns nil once all have
// stopped) or a pipe fails: the first failure stops the others and is returned, naming the pipe. A
// System runs once; to restart, build a new one over the same stores.
func (s *System) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("projection: system: Run called twice; build a new System to restart")
	}
	s.started = true
	pipes := s.pipes
	s.mu.Unlock()

	if len(pipes) == 0 {
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, p := range pipes {
		wg.Go(func() {
			if err := p.runner.Run(ctx); err != nil {
				once.Do(func() {
					first = fmt.Errorf("projection: system: %q following %q: %w", p.follower, p.leader, err)
					cancel()
				})
			}
		})
	}
	wg.Wait()
	return first
}

// Wait returns once follower has processed leader's notificationID (see Runner.Wait), or with the
// pipe's error if it stops first.
func (s *System) Wait(ctx context.Context, follower, leader string, notificationID int64) error {
	s.mu.Lock()
	p := s.pipe(follower, leader)
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("projection: system: wait: %q does not follow %q", follower, leader)
	}
	return p.runner.Wait(ctx, notificationID)
}
