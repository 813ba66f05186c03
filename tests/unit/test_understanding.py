"""The answer-understanding layer: values read in context, yes/no over the whole reply, situations.

Sentences here are deliberately unlike the shipped eval scenarios' wordings: the rules
must hold for patterns, not for the suite's examples.
"""

from __future__ import annotations

import pytest

from byourside_server.agent import understanding as hear
from byourside_server.domain import FieldSpec

PRICE = FieldSpec("price", "number", "The price in dollars")
COUNT = FieldSpec("rooms_left", "number", "How many rooms are left")
FEE = FieldSpec("late_fee", "number", "The late fee")
WHEN = FieldSpec("pickup_time", "string", "What time the order can be picked up")
CLOSES = FieldSpec("closing_time", "string", "What time they close")
DAY = FieldSpec("delivery_date", "string", "The delivery date")
EMAIL = FieldSpec("contact_email", "string", "The contact email address")
SURNAME = FieldSpec("manager_surname", "string", "The manager's surname")
OPEN = FieldSpec("open_late", "boolean", "Whether they are open late on Thursday")


@pytest.mark.parametrize("field,reply,expected", [
    # a correction replaces the value before it
    (PRICE, "It's forty, sorry, I mean forty-five dollars.", 45),
    (COUNT, "Two rooms left, no wait, three, someone just checked out.", 3),
    (WHEN, "Come by at six, actually make that half past six.", "half past six"),
    (WHEN, "Bring it in at eight fifteen, sorry, eight thirty.", "eight thirty"),
    (DAY, "It'll arrive on the ninth, no sorry, the tenth.", "the tenth"),
    # the figure that answers the question, not the first one
    (PRICE, "Normally it's ninety dollars, but this week it's seventy-two dollars.", 72),
    (PRICE, "It's thirty, no, I tell a lie, thirty-five dollars.", 35),
    (PRICE, "Sixty each, no, sixty-five each.", 65),
    (COUNT, "Room twelve is taken, but we have four rooms left on the second floor.", 4),
    (PRICE, "Extension three handles that; the price is eighteen dollars.", 18),
    (FEE, "Give me two minutes... the late fee is twenty-five dollars.", 25),
    (COUNT, "At nine o'clock we had six rooms, now there are five rooms left.", 5),
    (COUNT, "Tonight? Honestly, none left, we're fully booked.", 0),
    # nothing to pay is zero
    (FEE, "There's no late fee at all, we don't charge for that.", 0),
    (PRICE, "It's complimentary for guests.", 0),
    (PRICE, "Parking is free after six, otherwise it's eight dollars.", 8),
    (FieldSpec("child_price", "number", "The ticket price for a child"),
     "Adults are nine dollars and children go free.", 0),
    (FieldSpec("child_price", "number", "The ticket price for a child"), "Children are four dollars, adults nine.", 4),
    (FieldSpec("rooms_free", "number", "How many rooms are free on Friday"), "We have two rooms free on Friday.", 2),
    (PRICE, "A basic wash is a tenner, mate.", 10),
    (PRICE, "That one went for two grand.", 2000),
    (PRICE, "The Grand Hotel charges twelve dollars.", 12),
    (PRICE, "Around 2k for the lot.", 2000),
    # money and time read as said
    (PRICE, "That one's twelve ninety-nine.", 12.99),
    (WHEN, "You can collect it from quarter past four.", "quarter past four"),
    (CLOSES, "We're open eight till six today.", "six today"),
    (FieldSpec("opens", "string", "What time they open"), "We're open half seven till three.", "half seven"),
    (FieldSpec("hours", "string", "Their hours on Sunday"), "On Sundays we open at ten and close at four.",
     "ten to four"),
    (CLOSES, "On Sundays we open at ten and close at four.", "four"),
    (FieldSpec("closing_time", "string", "What time they close for the day"),
     "We close for lunch from one to two, and then shut for the day at half five.", "half five"),
    (FieldSpec("dailyRate", "number"), "Rental is forty-five a day, boots included.", 45),
    (WHEN, "Um, let me think. Probably around noon tomorrow.", "noon tomorrow"),
    # lead-ins and stalls do not become the value
    (DAY, "Good question! Let me look. Right, it's scheduled for Monday the third.", "Monday the third"),
    (FieldSpec("next_free_saturday", "string", "The date of the next free Saturday"),
     "The next free Saturday we have is the twenty-second of August.", "the twenty-second of August"),
    (FieldSpec("recommended", "string", "The recommended size"), "For a small garden I'd go with the midi, honestly.",
     "the midi"),
    (PRICE, "A cream tea for two is eighteen pounds fifty.", 18.5),
    (FieldSpec("hourly", "number", "The parking price per hour in dollars"),
     "It's three fifty an hour up to a daily max of eighteen dollars.", 3.5),
    (FieldSpec("allowance", "number", "The bag allowance in kilos"), "One bag of up to twenty-three kilos.", 23),
    (COUNT, "Only a couple of rooms left, I'm afraid.", 2),
    (FieldSpec("lead_time", "string", "How long it takes"), "They take six to eight weeks right now.",
     "six to eight weeks"),
    # emails and names as spoken
    (EMAIL, "Yes, write to bookings at lake view inn dot com please.", "bookings@lakeviewinn.com"),
    (EMAIL, "It's ana underscore r at mail dot example dot org.", "ana_r@mail.example.org"),
    (EMAIL, "Send it to sales@harbor-tools.com, thanks.", "sales@harbor-tools.com"),
    (EMAIL, "Mail ravi dot m at north dash star dot io.", "ravi.m@north-star.io"),
    (EMAIL, "Write to j. p. at pine lodge dot net.", "jp@pinelodge.net"),
    (EMAIL, "It's hello at sea view cafe, all one word, dot com.", "hello@seaviewcafe.com"),
    (DAY, "Thursday's no good, we're shut, but Friday afternoon is fine.", "Friday afternoon"),
    (SURNAME, "The manager is Ms. Kowalczyk, K-O-W-A-L-C-Z-Y-K.", "Kowalczyk"),
    (SURNAME, "Her surname is Odhiambo.", "Odhiambo"),
    (FieldSpec("teacher", "string", "The name of the year three teacher"),
     "Mrs. Patel had year three last year, but this year it's Mr. Osei.", "Mr. Osei"),
    (PRICE, "The decking is four dollars eighty a metre.", 4.8),
    # names, addresses, durations and references as their own words
    (FieldSpec("special", "string", "The name of today's special"), "Today's special is called Lamb Tagine.",
     "Lamb Tagine"),
    (FieldSpec("doctor", "string", "Which doctor will see the patient"), "You'll be seeing Dr. Okoro this time.",
     "Dr. Okoro"),
    (FieldSpec("contact_name", "string", "Who to ask for"), "Ask for Priya, she runs the front desk.", "Priya"),
    (FieldSpec("mechanic", "string", "The mechanic's name"), "Oh, that'll be Dmitri, ask for him at the desk.",
     "Dmitri"),
    (PRICE, "Group lessons are fifty-five dollars? For two hours?", 55),
    (FieldSpec("new_address", "string", "The address of the new shop"),
     "We've moved to 42 Canal Street, next to the bakery.", "42 Canal Street"),
    (FieldSpec("wait", "string", "How long the wait is"), "About half an hour at the moment.", "About half an hour"),
    (FieldSpec("booking_reference", "string"), "Your reference is B-K-7-4-2.", "BK742"),
    (FieldSpec("parking_cost", "number", "How much parking costs per hour"),
     "It's two fifty an hour, max ten dollars a day.", 2.5),
    # booleans over the whole reply
    (OPEN, "Yes we are, oh wait, no, that was last month, we close at six now.", False),
    (OPEN, "We used to be, but not any more.", False),
    (OPEN, "No worries, yes, we're open until ten on Thursdays.", True),
    (OPEN, "Uh-huh.", True),
    (FieldSpec("dogs", "boolean", "Whether dogs are allowed"), "Dogs are fine in the garden, just not indoors.", True),
    (OPEN, "Yeah, nah, not on Thursdays.", False),
    (OPEN, "Haven't done late nights since the summer.", False),
    (OPEN, "Oui, jusqu'à vingt-deux heures.", True),
    (OPEN, "Nein, leider nicht.", False),
    (OPEN, "We're open late on Thursday, yeah.", True),
    # regret colours an answer without being one
    (OPEN, "Unfortunately yes, till eleven, the neighbours love it.", True),
    (OPEN, "Unfortunately, we are.", True),
    (OPEN, "Sadly, we're not any more.", False),
    # a marker that opens the reply is no answer: the clause after it is
    (OPEN, "Right, so Thursdays, we've none of those now, it stopped in May.", False),
    (OPEN, "Okay, we don't, not since the summer.", False),
    (FieldSpec("confirmed", "boolean", "Whether the visit is confirmed"), "That's all booked in for Tuesday.", True),
    (FieldSpec("confirmed", "boolean", "Whether the visit is confirmed"), "You're all set for nine.", True),
    # full, in the words people use for it; words that only say when are no yes
    (FieldSpec("space_friday", "boolean", "Whether there is space on Friday"),
     "Friday's chock-a-block, sorry.", False),
    (FieldSpec("free_next_month", "boolean", "Whether they are free next month"),
     "Next month we're rammed with weddings.", False),
    # a figure taken back in a later clause; the conclusion is the new figure
    (COUNT, "We had five rooms. Oh wait, a family just checked in, which leaves three.", 3),
    (FieldSpec("chairs", "number", "How many chairs are available"),
     "Forty chairs. Hang on, twelve are out for repair, so twenty-eight.", 28),
    (COUNT, "Hang on, let me look. Eight rooms left.", 8),
    # a total asked for versus a part of it
    (FieldSpec("total", "number", "The total cost including tax in dollars"),
     "Two hundred before tax, so two hundred and sixteen altogether.", 216),
    (FieldSpec("net", "number", "The price excluding VAT"), "Sixty pounds inc VAT, fifty without.", 50),
    (PRICE, "The bill comes to ninety, that's seventy for the room and twenty for breakfast.", 90),
    # a time without the day the question already gave
    (FieldSpec("closes_today", "string", "What time the pool closes today"),
     "Because of the gala we shut at four today.", "four"),
    # a spoken address with digits after a word; a name said again in full
    (EMAIL, "It's maria dot lopez 88 at fastmail dot com.", "maria.lopez88@fastmail.com"),
    (EMAIL, "Write to office at a b c plumbing dot net.", "office@abcplumbing.net"),
    (FieldSpec("instructor", "string", "The instructor's name"),
     "You'd be booked in with Tomasz, Tomasz Nowak, on Mondays.", "Tomasz Nowak"),
    # a clock time with a hyphen; the time nearest the question's words; a day asked with "ready"
    (WHEN, "Swing by at about six-fifteen, give or take.", "six-fifteen"),
    (FieldSpec("last_entry", "string", "The time of last entry"), "Doors open at seven and last entry is at nine.",
     "nine"),
    (FieldSpec("collection_day", "string", "The day the prescription will be ready"),
     "It'll be ready Wednesday, after three or so.", "Wednesday"),
    # charged on top of what was asked about is a no
    (FieldSpec("vat_included", "boolean", "Whether the quote includes VAT"), "VAT goes on top of that figure.", False),
    (FieldSpec("towels_included", "boolean", "Whether towels are included"),
     "Towels are included, the extra pillows cost more.", True),
    # a count after a time; a rate per week said as "two-eighty"
    (FieldSpec("tables_free", "number", "How many tables are free tonight"),
     "From seven tonight I've got four of the window tables free.", 4),
    (FieldSpec("weekly_rent", "number", "The weekly rent in dollars"), "It's two-eighty a week, bills on top.", 280),
    # an email with a written-as aside; a name spelled, then the surname
    (EMAIL, "Drop it to info dash desk at corner deli, that's all lower case, dot com.", "info-desk@cornerdeli.com"),
    (FieldSpec("guest_name", "string", "The guest's name"), "It's Aoife, A, O, I, F, E, Brennan.", "Aoife Brennan"),
    (SURNAME, "He's Tadhg, T, A, D, H, G, Murphy.", "Murphy"),
])
def test_values_are_read_in_context(field: FieldSpec, reply: str, expected: object) -> None:
    assert hear.extract(field, reply, None) == expected


@pytest.mark.parametrize("field,reply", [
    (PRICE, "I'm not sure what it costs, sorry."),
    (WHEN, "Sorry, who is this?"),
    (PRICE, "I'm not allowed to give out prices over the phone."),
    (OPEN, "Hmm, I don't know, I'm afraid."),
    (DAY, "Let me check, one moment."),
    (OPEN, "It depends which manager is on, some weeks we don't."),
    (OPEN, "Sometimes, yes."),
    (OPEN, "Sorry, it's against our policy to discuss that with anyone but the account holder."),
    (OPEN, "I don't talk to machines, get a real person to ring me."),
    (FieldSpec("opens_tomorrow", "string", "What time they open tomorrow"),
     "We're closed all next week, so we won't be opening tomorrow at all."),
    (COUNT, "That's line two."),
    (COUNT, "For how many people?"),
    (PRICE, "It's the dinner rush, can you try again after nine?"),
    (FieldSpec("total", "number", "The total cost including tax in dollars"), "Forty-five plus tax."),
    (OPEN, "Sorry, I didn't understand."),
    (SURNAME, "He's on leave until the fourteenth, ring back then."),  # no name said: not a sentence
    (FieldSpec("arrival_day", "string", "The day the parts arrive"), "Give me two secs, I'm pulling up the order."),
    (FieldSpec("start_time", "string", "What time the class starts"), "Bring a mat and some water."),
])
def test_no_value_when_the_reply_holds_none(field: FieldSpec, reply: str) -> None:
    assert hear.extract(field, reply, None) is None


@pytest.mark.parametrize("reply,verdict", [
    ("Yep.", "yes"), ("Nope, sorry.", "no"), ("No problem, and yes, we do.", "yes"),
    ("Not that I know of.", "no"), ("I couldn't tell you, to be honest.", "unknown"),
    ("That's confidential, I'm afraid.", "refusal"), ("Mm-hmm, that's right.", "yes"),
    ("Sí.", "yes"), ("Non.", "no"), ("The weather is lovely.", None),
    ("That's no problem, we do them all the time.", "yes"), ("No worries, I don't know.", "unknown"),
])
def test_yes_no_refusal_unknown(reply: str, verdict: str | None) -> None:
    assert hear.classify(reply) == verdict


@pytest.mark.parametrize("reply,situation", [
    ("You've got the wrong number, mate, this is a private house.", "wrong_number"),
    ("There's no Dr. Amin at this number.", "wrong_number"),
    ("We're a florist, not a garage.", "wrong_number"),
    ("Please stop calling this number.", "do_not_call"),
    ("Take me off your list.", "do_not_call"),
    ("There's no pizza place here, it's a house, check your number.", "wrong_number"),
    ("She's out, she'll ring you back tomorrow.", "callback"),
    ("It's not a good time, try again later.", "callback"),
    ("She's out today. Can I take a number and get her to give you a ring?", "callback"),
    ("Leave it with me, I'll check and phone you tomorrow.", "callback"),
    ("It's twenty dollars.", None),
    ("This isn't something we offer.", None),
    # ordinary answers that share words with those situations
    ("There's no parking here, sorry.", None),
    ("We have the wrong size in stock at the moment.", None),
    ("I've never heard of that product.", None),
    ("Is this a sales call?", None),
    ("Three pairs left in the size ten.", None),
    # the person asked for is long gone, said without "wrong number"
    ("Mr. Adeyemi? He hasn't worked here for about three years.", "wrong_number"),
    ("Oh, she's not been with us since the spring.", "wrong_number"),
    ("She's not here today, try tomorrow.", "callback"),
    ("He's not in at the moment.", None),
    # a business disowning the whole field, versus one that does not offer one thing
    ("Er, this is a florist's, we don't do any plumbing stuff.", "wrong_number"),
    ("We're a butcher's, nothing to do with the school, love.", "wrong_number"),
    ("We're a tiny place, we don't do takeaways.", None),
])
def test_situations(reply: str, situation: str | None) -> None:
    assert hear.situation(reply) == situation


@pytest.mark.parametrize("reply,hold,transfer", [
    ("Bear with me a sec.", True, False),
    ("Give me a minute while I look that up.", True, False),
    ("Let me get my colleague, one moment.", True, True),
    ("I'll pass you on to our bookings team.", True, True),  # nothing to answer yet: wait as on hold
    ("Hang on. It's eleven fifty.", False, False),
    ("Okay, I'll just go and check in the stockroom.", True, False),
    ("Bear with me, the diary's just loading.", True, False),
    ("Hang on, yes we do.", False, False),
    ("Let me ask my manager, won't be long.", True, False),
    ("Two secs, let me find the order.", True, False),
    ("It's two seconds from the station.", False, False),
    ("A second option is the Friday slot.", False, False),
])
def test_holds_and_transfers(reply: str, hold: bool, transfer: bool) -> None:
    assert hear.is_hold(reply) is hold
    assert hear.is_transfer(reply) is transfer


def test_a_time_drops_a_day_the_call_already_named() -> None:
    window = FieldSpec("window", "string", "The delivery time window")
    reply = "The driver will be there between ten and twelve tomorrow morning."
    assert hear.extract(window, reply, None) == "between ten and twelve tomorrow"
    assert hear.extract(window, reply, None, None, "Ask when the parcel arrives tomorrow.") == "between ten and twelve"


def test_spelling_requests_and_greetings() -> None:
    assert hear.is_spelling_request("Sorry, how do you spell that?")
    assert not hear.is_spelling_request("The spelling bee is on Friday.")
    assert hear.is_greeting("Bookings, Priya speaking.")
    assert not hear.is_greeting("Bookings are open until Friday.")


def test_read_back_replies() -> None:
    assert hear.readback_verdict("No, that's not right. It's the twelfth.") is False
    assert hear.after_dispute("No, that's not right. It's the twelfth.") == "It's the twelfth."
    assert hear.readback_verdict("Yes, that's all correct.") is True
    assert hear.after_dispute("No, it's the twelfth.") == "it's the twelfth."
    # a marker that opens more words is no "that's right"
    assert hear.readback_verdict("Right, so it's actually the Friday now.") is None
    assert hear.readback_verdict("Right, yes.") is True


@pytest.mark.parametrize("reply,greeting", [
    ("I can't come to the phone right now, please leave a message.", True),
    ("Hi, you've reached the Okafors. We're not home, leave your name and number.", True),
    ("The number you have dialled is not available.", True),
    ("Sorry, I'm not available to take your call.", True),
    ("You've reached Harbour Bikes, Sam speaking.", False),
    ("He's not available, try again later.", False),  # a person, speaking for someone else
    ("Leave your name and number and I'll have her ring you back.", False),
    ("We're out of the blue paint, sorry.", False),
    ("Thanks for calling, but we're not available on Sundays, try us again on Monday.", False),
])
def test_voicemail_greetings_heard_mid_call(reply: str, greeting: bool) -> None:
    assert hear.is_voicemail_greeting(reply) is greeting
