import json, unittest
from byourside.client import Client
from byourside.errors import ByoursideError

def make_client(captured, resp=None, raise_status=None):
    def transport(method, url, headers, body):
        captured["method"] = method; captured["url"] = url
        captured["headers"] = headers; captured["body"] = body
        if raise_status is not None:
            return raise_status  # (status, obj)
        return resp
    return Client(api_key="bys_ak_x", base_url="https://b", transport=transport)

class TestClient(unittest.TestCase):
    def test_place_call(self):
        cap = {}
        c = make_client(cap, resp=(200, {"callId": "c1", "status": "queued"}))
        r = c.place_call(to="+14155550123", objective="Book a table", fields=[{"name": "booked"}])
        self.assertEqual(cap["method"], "POST")
        self.assertEqual(cap["url"], "https://b/v1/agent/calls")
        self.assertEqual(cap["headers"]["Authorization"], "Bearer bys_ak_x")
        self.assertEqual(json.loads(cap["body"])["to"], "+14155550123")
        self.assertEqual(r["callId"], "c1")

    def test_get_call_encoded(self):
        cap = {}
        c = make_client(cap, resp=(200, {"id": "c1", "status": "completed"}))
        c.get_call("c 1")
        self.assertEqual(cap["method"], "GET")
        self.assertEqual(cap["url"], "https://b/v1/agent/calls/c%201")
        self.assertIsNone(cap["body"])

    def test_list_calls_unwrap_clamp(self):
        cap = {}
        c = make_client(cap, resp=(200, {"calls": [{"id": "c1"}]}))
        r = c.list_calls(limit=9999)
        self.assertTrue(cap["url"].endswith("/v1/agent/calls?limit=100"))
        self.assertEqual(r, [{"id": "c1"}])

    def test_error_raises(self):
        c = make_client({}, raise_status=(400, {"error": "destination_blocked"}))
        with self.assertRaises(ByoursideError) as ctx:
            c.place_call(to="+1900", objective="x")
        self.assertEqual(ctx.exception.status, 400)
        self.assertEqual(ctx.exception.code, "destination_blocked")

if __name__ == "__main__":
    unittest.main()
