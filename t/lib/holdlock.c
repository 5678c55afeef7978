/*
 * t/store_writer_lock.t's other process: holds a write transaction of the
 * store at argv[1] (its writer lock) until it is killed, and says "held"
 * once it has it.
 */

#include <lmdb.h>
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    MDB_env  *env;
    MDB_txn  *txn;

    if (argc != 2 || mdb_env_create(&env) != 0
        || mdb_env_set_maxdbs(env, 16) != 0
        || mdb_env_open(env, argv[1], 0, 0660) != 0
        || mdb_txn_begin(env, NULL, 0, &txn) != 0)
    {
        fprintf(stderr, "holdlock: cannot open %s\n", argc > 1 ? argv[1] : "");
        return 1;
    }

    printf("held\n");
    fflush(stdout);

    for ( ;; ) {
        pause();
    }
}
