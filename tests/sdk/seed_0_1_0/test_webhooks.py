import hmac, hashlib, time, unittest
from byourside.webhooks import verify_webhook

SECRET = "whsec"
def sign(ts, body):
    v1 = hmac.new(SECRET.encode(), ("%d.%s" % (ts, body)).encode(), hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (ts, v1)

class TestWebhooks(unittest.TestCase):
    def test_accepts_valid(self):
        body = '{"callId":"c1"}'; ts = int(time.time())
        self.assertTrue(verify_webhook(sign(ts, body), body, SECRET))
    def test_rejects(self):
        body = '{"callId":"c1"}'; ts = int(time.time())
        self.assertFalse(verify_webhook(sign(ts, body), '{"callId":"c2"}', SECRET))
        self.assertFalse(verify_webhook(sign(ts, body), body, "other"))
        self.assertFalse(verify_webhook(sign(ts - 9999, body), body, SECRET, tolerance=300))
        self.assertFalse(verify_webhook("garbage", body, SECRET))
        self.assertFalse(verify_webhook("", body, SECRET))

if __name__ == "__main__":
    unittest.main()
