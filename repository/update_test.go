package repository_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// commandError is a command's own error type: Update must return it as it is.
type commandError struct{ reason string }

func (e *commandError) Error() string { return e.reason }

func TestUpdateRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	repo := f.counters()
	other := f.counters()
	c := savedCounter(ctx, t, repo, "a", 0)
	runs := 0
	ids, err := repo.Update(ctx, c.ID, func(c *Counter) error {
		runs++
		if runs == 1 {
			// Another writer changes the counter between this load and this save.
			x, err := other.Get(ctx, c.ID)
			if err != nil {
				return err
			}
			x.Inc(100)
			if _, err := other.Save(ctx, x); err != nil {
				return err
			}
		}
		c.Inc(1)
		return nil
	})
	if err != nil || runs != 2 || len(ids) != 1 {
		t.Fatalf("update: ids %v, %v, after %d runs", ids, err, runs)
	}
	got, _ := repo.Get(ctx, c.ID)
	if got.Count != 101 || got.Version != 3 {
		t.Fatalf("count %d version %d: a change was lost", got.Count, got.Version)
	}
}

func TestUpdateReturnsTheCommandsErrorUntouched(t *testing.T) {
	ctx := context.Background()
	repo := newFixture().counters()
	c := savedCounter(ctx, t, repo, "a", 0)
	refused := &commandError{reason: "no"}
	ids, err := repo.Update(ctx, c.ID, func(c *Counter) error {
		c.Inc(1) // triggered, then refused: nothing may be saved
		return refused
	})
	var ce *commandError
	if err != refused || !errors.As(err, &ce) || ids != nil {
		t.Fatalf("got %v (%T), want the command's own error value", err, err)
	}
	if got, _ := repo.Get(ctx, c.ID); got.Version != 1 {
		t.Fatalf("a failed command saved its events: version %d", got.Version)
	}
	if _, err := repo.Update(ctx, uuid.New(), func(*Counter) error { return nil }); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("an unknown aggregate: got %v, want ErrNotFound", err)
	}
	if _, err := repo.Update(ctx, c.ID, nil); err == nil {
		t.Fatal("a nil command: no error")
	}
}

func TestUpdateGivesUpAfterItsRetries(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	repo := f.counters(repository.WithUpdateRetries(2))
	other := f.counters()
	c := savedCounter(ctx, t, repo, "a", 0)
	runs := 0
	_, err := repo.Update(ctx, c.ID, func(c *Counter) error {
		runs++
		x, _ := other.Get(ctx, c.ID)
		x.Inc(1)
		if _, err := other.Save(ctx, x); err != nil {
			return err
		}
		c.Inc(1)
		return nil
	})
	if !errors.Is(err, es.ErrConflict) || runs != 3 {
		t.Fatalf("got %v after %d runs, want ErrConflict after 3", err, runs)
	}
}

// Concurrent updates of one aggregate all succeed, each on the state the others left: none is lost.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	const writers = 8
	repo := newFixture().counters(repository.WithUpdateRetries(writers - 1))
	c := savedCounter(ctx, t, repo, "a", 0)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			<-start
			_, err := repo.Update(ctx, c.ID, func(c *Counter) error { c.Inc(1); return nil })
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := repo.Get(ctx, c.ID); got.Count != writers {
		t.Fatalf("count %d after %d updates", got.Count, writers)
	}
}

func TestUpdateAllSavesTogether(t *testing.T) {
	ctx := context.Background()
	repo := newFixture().counters()
	a, b := newCounter("a", 0), newCounter("b", 0)
	mustSave(ctx, t, repo, a, b)
	ids, err := repo.UpdateAll(ctx, []uuid.UUID{a.ID, b.ID}, func(cs []*Counter) error {
		cs[0].Inc(1)
		cs[1].Inc(2)
		return nil
	})
	if err != nil || len(ids) != 2 || ids[1] != ids[0]+1 {
		t.Fatalf("ids %v, %v", ids, err)
	}
	ga, _ := repo.Get(ctx, a.ID)
	gb, _ := repo.Get(ctx, b.ID)
	if ga.Count != 1 || gb.Count != 2 {
		t.Fatalf("counts %d %d", ga.Count, gb.Count)
	}
	if _, err := repo.UpdateAll(ctx, []uuid.UUID{a.ID, a.ID}, func([]*Counter) error { return nil }); err == nil {
		t.Fatal("an ID given twice: no error")
	}
}
