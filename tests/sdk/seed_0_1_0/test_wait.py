import unittest
from byourside.client import Client
from byourside.errors import ByoursideError

def seq_client(statuses):
    state = {"i": 0, "sleeps": 0}
    def transport(method, url, headers, body):
        s = statuses[min(state["i"], len(statuses) - 1)]; state["i"] += 1
        return (200, {"id": "c1", "status": s})
    c = Client(api_key="k", base_url="https://b", transport=transport, sleep=lambda *_: state.__setitem__("sleeps", state["sleeps"] + 1))
    return c, state

class TestWait(unittest.TestCase):
    def test_returns_when_terminal(self):
        c, st = seq_client(["queued", "in_progress", "completed"])
        r = c.wait_for_call("c1", timeout=100, interval=0)
        self.assertEqual(r["status"], "completed")
        self.assertEqual(st["sleeps"], 2)
    def test_timeout(self):
        c, _ = seq_client(["queued"])
        with self.assertRaises(ByoursideError) as ctx:
            c.wait_for_call("c1", timeout=0, interval=0)
        self.assertEqual(ctx.exception.code, "timeout")

if __name__ == "__main__":
    unittest.main()
