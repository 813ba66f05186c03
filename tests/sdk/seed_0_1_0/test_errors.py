import unittest
from byourside.errors import map_error, ByoursideError

class TestErrors(unittest.TestCase):
    def test_known_tokens(self):
        self.assertIn("not allowed", map_error(400, {"error": "destination_blocked"}).lower())
        self.assertIn("api key", map_error(401, {"error": "unauthorized"}).lower())
    def test_fallbacks(self):
        self.assertIn("temporary", map_error(503, {"error": "store_error"}).lower())
        self.assertIn("temporary", map_error(0, None).lower())
        self.assertIn("weird", map_error(400, {"error": "weird"}))
    def test_error_fields(self):
        e = ByoursideError("msg", 400, "destination_blocked")
        self.assertEqual(e.status, 400); self.assertEqual(e.code, "destination_blocked"); self.assertEqual(e.message, "msg")

if __name__ == "__main__":
    unittest.main()
