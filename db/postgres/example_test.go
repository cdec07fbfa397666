package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
)

// The application "bank" keeps its tables in the schema of the same name. The example needs a server,
// so it has no Output comment: it is compiled, not run, by go test.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(16)

	// One list of options names the schema for the migration and the recorders.
	opts := []postgres.Option{postgres.WithSchema("bank")}
	if err := postgres.Migrate(ctx, db, opts...); err != nil {
		log.Fatal(err)
	}
	r, err := postgres.NewProcessRecorder(ctx, db, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	account := uuid.New()
	ids, err := r.InsertEvents(ctx, []es.StoredEvent{
		{OriginatorID: account, OriginatorVersion: 1, Topic: "AccountOpened", State: []byte(`{}`)},
		{OriginatorID: account, OriginatorVersion: 2, Topic: "Deposited", State: []byte(`{"amount":100}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("recorded as notifications", ids)

	// Follow the log from the start for a second.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for n, err := range r.Subscribe(ctx, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n.ID, n.Topic)
	}
}

// A reader on a hot standby of the server of Example (a projection's, say): the recorder is
// made WithReadOnly, so that making it writes nothing, and its subscription polls, since a standby has
// no LISTEN. It is compiled, not run, by go test.
func ExampleWithReadOnly() {
	ctx := context.Background()
	replica, err := sql.Open("pgx", "postgres://postgres@replica.internal:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer replica.Close()

	r, err := postgres.NewProcessRecorder(ctx, replica, postgres.WithSchema("bank"), postgres.WithReadOnly(),
		postgres.WithPollInterval(50*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for n, err := range r.Subscribe(ctx, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n.ID, n.Topic)
	}
}
