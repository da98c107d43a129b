"""The commit's pipeline (key_accounts.importing.run and staging), run in-process on small
chunks: Python reads chunk N+1 while a second thread writes chunk N, so a failure on either
side, in any chunk, must still leave nothing written and say where it happened. Also what the
commit does for speed and must not change: ids and phone rows of new customers given in one
statement, and the name's trigram index merged before the commit.
"""
import threading

import pytest
from django.db import connection
from django.utils import translation

from key_accounts.importing import reader as import_reader
from key_accounts.importing import run as import_run
from key_accounts.importing import staging as import_staging
from key_accounts.importing.run import ErrorLog, run_import
from key_accounts.models import Customer, PhoneNumber
from tests.key_accounts.test_import import HEADER, SPEC, assert_nothing_written, credit_code

ROWS = [[f"Q-{n}", f"流水线公司{n}", credit_code(700 + n), "企业", "C11", f"1390000{n:04d}"] for n in range(9)]


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(import_run, "CHUNK", 2)  # 9 rows: five chunks, the first written before the last is read


def write(tmp_path, rows, header=HEADER, raw_tail=b""):
    path = tmp_path / "customers.csv"
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + raw_tail)
    return path


def run(actor, path, commit=True, spec=SPEC):
    errors = ErrorLog()
    outcome = run_import(actor=actor, path=str(path), name="customers.csv", raw_spec=spec, commit=commit, errors=errors)
    errors.file.seek(0)
    found = [line.rstrip("\n").split("\t") for line in errors.file]
    errors.close()
    return outcome, found


def test_new_customers_get_ids_in_file_order_and_their_own_phone_rows(tree, people, tmp_path):
    outcome, errors = run(people.city, write(tmp_path, ROWS))
    assert (outcome.committed, outcome.created, errors) == (True, 9, [])
    customers = list(Customer.objects.filter(external_id__startswith="Q-").order_by("id").values_list("id", "external_id", "phone"))
    assert [external_id for _id, external_id, _phone in customers] == [f"Q-{n}" for n in range(9)]
    phones = {customer_id: digits for customer_id, digits in PhoneNumber.objects.filter(contact=None).values_list("customer_id", "digits")}
    assert {customer_id: phone for customer_id, _external_id, phone in customers} == phones


def test_a_parse_error_in_a_later_chunk_aborts_the_commit_and_names_its_line(tree, people, tmp_path, monkeypatch):
    before = Customer.objects.count()
    monkeypatch.setattr(import_reader, "CSV_FIELD_LIMIT", 100)
    rows = ROWS[:6] + [["Q-x", "长" * 101, "", "企业", "C11", ""]] + ROWS[6:]  # line 8: a cell over the limit
    outcome, errors = run(people.city, write(tmp_path, rows))
    assert not outcome.committed
    [(line, column, reason, _value)] = errors
    assert line == "8" and column == "" and reason.startswith("Line 8 cannot be read as CSV")
    assert_nothing_written(before)


def test_undecodable_bytes_after_written_chunks_abort_the_commit_and_name_their_line(tree, people, tmp_path):
    before = Customer.objects.count()
    path = write(tmp_path, ROWS, raw_tail=b"Q-9,\xff\xfe,,\xe4\xbc\x81\xe4\xb8\x9a,C11,\n")  # line 11
    outcome, errors = run(people.city, path, spec={**SPEC, "encoding": "utf-8"})
    assert not outcome.committed
    [(line, _column, reason, _value)] = errors
    assert line == "11" and "Line 11 is not valid UTF-8" in reason
    assert_nothing_written(before)


def test_a_failure_of_the_writing_thread_reaches_the_caller_and_writes_nothing(tree, people, tmp_path, monkeypatch):
    before = Customer.objects.count()
    original, calls = import_staging.Staging.write, []

    def failing_write(self, timings=None):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(self, timings)

    monkeypatch.setattr(import_staging.Staging, "write", failing_write)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="disk full"):
        run(people.city, write(tmp_path, ROWS))
    assert len(calls) == 3  # two chunks were written before the failure
    assert threading.active_count() == threads  # the writing thread is gone
    assert_nothing_written(before)


def test_the_name_index_is_merged_before_the_commit_and_the_setting_restored(tree, people, tmp_path):
    outcome, _errors = run(people.city, write(tmp_path, ROWS))
    assert outcome.committed and outcome.timings["gin"] >= 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list('ka_customer_name_trgm'::regclass)")
        assert cursor.fetchone()[0] == 0  # nothing left in the pending list
        cursor.execute("SHOW gin_pending_list_limit")
        assert cursor.fetchone()[0] == "4MB"
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"SELECT count(*) FROM {Customer._meta.db_table} WHERE upper(name) LIKE %s", ["%流水线公司%"])
        assert cursor.fetchone()[0] == 9


def test_a_dry_run_leaves_the_name_index_alone(tree, people, tmp_path):
    outcome, errors = run(people.city, write(tmp_path, ROWS), commit=False)
    assert (outcome.committed, outcome.created, errors) == (False, 9, [])
    assert "gin" not in outcome.timings
    with connection.cursor() as cursor:
        cursor.execute("SHOW gin_pending_list_limit")
        assert cursor.fetchone()[0] == "4MB"
    assert not Customer.objects.filter(external_id__startswith="Q-").exists()
