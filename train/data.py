#!/usr/bin/env python3
"""Seeded generator of multi-turn recall chats (standard library only).

A user states a few personal facts across a short chat with small talk in between, then asks about one
of them; the answer is the fact's value, which the reply must contain as a whole word. The splits draw
values from disjoint pools, and the test split also uses phrasings that train and validation never use.

CLI (kept stable; external checks call it):
  python3 train/data.py --split train|validation|test --seed N --count K --out FILE.jsonl
One JSON record a line: {"history": [{"user", "assistant"}, ...], "question": "...", "answer": "..."}.

Importable: generate(split, seed, count) returns the records with two extra keys, "kind" (the asked
fact's kind) and "reply" (a reference assistant reply to the question, containing the answer).
"""

import argparse
import json
import random
import re
import sys

SPLITS = ("train", "validation", "test")
MIN_TURNS, MAX_TURNS = 5, 9
# the asked fact is stated at least this many turns before the question
MIN_GAP = 4

# --- value pools: every list is cut into disjoint train / validation / test parts by index -----------

NAMES = """Alice Bruno Clara Daniel Elena Felix Grace Hugo Irene Jonas Karen Liam Maria Nathan Olivia Peter
Quinn Rosa Simon Tara Umar Vera Walter Xenia Yusuf Zoe Aaron Bianca Caleb Diana Edgar Fiona George Helena
Isaac Julia Kevin Laura Marco Nora Oscar Paula Rafael Sofia Thomas Ursula Victor Wendy Adrian Beatrix
Cedric Dora Emil Freya Gustav Hanna Ivan Jasmine Klaus Lena Martin Nadia Otto Petra Ruben Selma Tobias
Uma Viktor Wilma Alan Betty Carl Doris Eric Flora Glen Heidi Igor Joyce Kurt Lucy Miles Nina Owen Pia
Roland Sara Tim Ute Vince Willa Albert Carmen Dennis Eva Frank Gloria Henry Ingrid Jack Kira Leo Mila
Neil Olga Paul Rita Sam Tessa Anton Celia Dylan Elsa Fabian Gina Hector Iris Jakob Lara Mateo Nell""".split()

PETS = """Biscuit Pepper Whiskers Shadow Mittens Pickles Wafer Noodle Pumpkin Ziggy Socks Mochi Bandit
Peanut Muffin Sprinkles Domino Gizmo Toffee Nugget Rascal Cookie Fudge Button Marble Bubbles Sparky
Paddington Snickers Truffle Doodle Jellybean Pretzel Crumpet Sherlock Wiggles Rolo Taco Nacho Bagel
Cinnamon Dumpling Pistachio Clover Ginger Hazel Juniper Maple Oakley Pebbles Poppy Sunny Thistle Acorn
Barnaby Chester Dexter Fergus Gus Humphrey Kipper Lulu Misty Nibbles Oreo Patches Quincy Rufus Scout
Tinkerbell Wally Yoyo Zorro Bingo Casper Duke Fluffy Goldie Hopper Inky Jasper""".split()
PET_KINDS = ["dog", "cat", "rabbit", "hamster", "parrot", "turtle", "goldfish", "ferret"]

CITIES = """Lisbon Madrid Paris Berlin Vienna Prague Warsaw Oslo Stockholm Helsinki Dublin London Edinburgh
Amsterdam Brussels Zurich Geneva Rome Milan Naples Athens Istanbul Cairo Nairobi Lagos Accra Casablanca
Tunis Toronto Montreal Vancouver Chicago Boston Seattle Denver Austin Miami Atlanta Houston Phoenix
Portland Detroit Havana Lima Bogota Quito Santiago Caracas Montevideo Tokyo Osaka Kyoto Seoul Busan
Beijing Shanghai Hanoi Bangkok Manila Jakarta Singapore Mumbai Delhi Dhaka Karachi Tehran Baghdad
Riyadh Dubai Doha Sydney Melbourne Perth Brisbane Auckland Wellington Reykjavik Tallinn Riga Vilnius
Krakow Budapest Bucharest Sarajevo Belgrade Zagreb Ljubljana Porto Seville Valencia Bilbao Lyon Marseille
Munich Hamburg Cologne Dresden Leipzig Bremen Antwerp Rotterdam Utrecht Glasgow Cardiff Belfast""".split()

JOBS = """teacher nurse doctor plumber electrician carpenter baker chef farmer pilot dentist lawyer
architect engineer accountant librarian journalist photographer painter musician pharmacist
veterinarian mechanic firefighter gardener tailor butcher florist cashier waiter barber designer
programmer scientist translator secretary surgeon therapist banker sailor soldier detective janitor
courier jeweler potter welder roofer locksmith optician midwife geologist astronomer chemist
biologist economist historian actor dancer sculptor poet""".split()

COLOURS = """red blue green yellow purple orange pink brown black white grey turquoise teal maroon navy
beige lavender crimson scarlet violet indigo magenta amber gold silver olive coral ivory lilac mint
peach cyan ochre burgundy emerald""".split()

FOODS = """pizza sushi pasta lasagna curry tacos burritos ramen dumplings pancakes waffles risotto paella
falafel hummus kebab noodles steak salmon omelette porridge goulash moussaka couscous tofu chili
burgers sandwiches soup salad cheesecake brownies cookies croissants bagels pretzels nachos gnocchi
ravioli tiramisu pho bibimbap tempura samosas biryani enchiladas quiche crepes schnitzel""".split()

NUMBER_THINGS = ["flat", "room", "locker"]


def _split_of_index(i):
    """Index i of a value list -> its split: one in six test, one in six validation, the rest train."""
    return "test" if i % 6 == 0 else "validation" if i % 6 == 1 else "train"


def _pool(values, split):
    return [v for i, v in enumerate(values) if _split_of_index(i) == split]


def _numbers(lo, hi, split):
    return [str(n) for n in range(lo, hi + 1) if _split_of_index(n) == split]


def _pseudo_words(count, seed, banned):
    """Made-up capitalised words (e.g. 'Taveno') that widen the train pools, so the model learns to copy
    any word rather than memorise a short list; none of them occurs in any real pool."""
    rng = random.Random(seed)
    onsets = "b c d f g h j k l m n p r s t v w z br dr fl gr kl pr st tr ch sh".split()
    vowels = "a e i o u ai ea io".split()
    codas = ["", "", "", "n", "r", "l", "s", "th", "x"]
    out, seen = [], set(w.lower() for w in banned)
    while len(out) < count:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 3))) + rng.choice(codas)
        word = word.capitalize()
        if word.lower() not in seen and 4 <= len(word) <= 10:
            seen.add(word.lower())
            out.append(word)
    return out


_ALL_REAL = NAMES + PETS + CITIES + JOBS + COLOURS + FOODS
_PSEUDO = _pseudo_words(4500, 1234, _ALL_REAL)
# train only: made-up values per kind, capitalised like the real ones
_PSEUDO_BY_KIND = {
    "name": _PSEUDO[0:1000],
    "pet": _PSEUDO[1000:2000],
    "city": _PSEUDO[2000:3000],
    "job": [w.lower() for w in _PSEUDO[3000:3500]],
    "colour": [w.lower() for w in _PSEUDO[3500:4000]],
    "food": [w.lower() for w in _PSEUDO[4000:4500]],
}


def value_pools(split):
    """The values each fact kind draws from in `split` (disjoint across splits and across kinds).
    In train a kind may also have made-up values: (real, made_up) pairs, each drawn half of the time."""
    pools = {
        "name": _pool(NAMES, split),
        "pet": _pool(PETS, split),
        "city": _pool(CITIES, split),
        "job": _pool(JOBS, split),
        "colour": _pool(COLOURS, split),
        "food": _pool(FOODS, split),
        "age": _numbers(18, 89, split),
        "number": _numbers(100, 999, split),
    }
    made_up = _PSEUDO_BY_KIND if split == "train" else {}
    return {kind: (real, made_up.get(kind, [])) for kind, real in pools.items()}


def _draw_value(rng, pool, used):
    real, made_up = pool
    while True:
        value = rng.choice(made_up if made_up and rng.random() < 0.5 else real)
        if value.lower() not in used:
            return value


# --- phrasings: {v} is the value, {pet} the kind of pet, {thing} flat/room/locker ----------------------
# Per kind: statements, acknowledgements, questions, replies. The LAST statement and the LAST question
# of every kind are held out: only the test split uses them.

KINDS = {
    "name": {
        "state": [
            "Hi! My name is {v}.",
            "Hello there, I'm {v}.",
            "By the way, you can call me {v}.",
            "I should introduce myself: my name is {v}.",
            "Everyone calls me {v}, that's my name.",
            "My name's {v}.",
            "I am {v}, by the way.",
            "Let me tell you my name: it is {v}.",
            "You can call me {v}; everyone does.",
            "Nice to chat! People know me as {v}.",
        ],
        "ack": ["Nice to meet you, {v}!", "Hello {v}, pleased to meet you.", "Great to meet you, {v}."],
        "ask": [
            "What is my name?",
            "Do you remember my name?",
            "What did I say my name was?",
            "Can you tell me what I'm called?",
            "Tell me my name.",
            "What am I called?",
            "Which name did I give you?",
            "Remind me, what is my name?",
            "Who am I? Tell me my name.",
        ],
        "reply": ["Your name is {v}.", "You told me your name is {v}.", "You are {v}."],
    },
    "city": {
        "state": [
            "I live in {v}.",
            "My home is in {v}.",
            "I moved to {v} a few years ago and I still live there.",
            "These days I'm based in {v}.",
            "My apartment is in {v}, I love the city.",
            "I'm from {v} and I live there now.",
            "I live in the city of {v}.",
            "My city is {v}.",
            "I have a home in {v}.",
            "Home for me is the city of {v}.",
        ],
        "ack": ["{v} sounds like a lovely place.", "Oh, {v}! I have heard good things about it.", "Thanks, noted that you live in {v}."],
        "ask": [
            "Which city do I live in?",
            "Where do I live?",
            "Do you remember what city I live in?",
            "What city is my home?",
            "Tell me where I live.",
            "In which city is my home?",
            "Which city did I say I live in?",
            "Remind me, which city do I live in?",
            "Remind me, where is my home?",
        ],
        "reply": ["You live in {v}.", "Your home is in {v}.", "You told me you live in {v}."],
    },
    "job": {
        "state": [
            "I work as a {v}.",
            "My job? I'm a {v}.",
            "I have been a {v} for ten years now.",
            "For a living I work as a {v}.",
            "At work I'm a {v}, it keeps me busy.",
            "I am a {v} by profession.",
            "I'm a {v}, that's my job.",
            "My work? I am a {v}.",
            "I earn my living as a {v}.",
            "My profession is {v}.",
        ],
        "ack": ["Being a {v} must be interesting.", "A {v}, that is a great job.", "Got it, you work as a {v}."],
        "ask": [
            "What is my job?",
            "What do I do for a living?",
            "Do you remember my job?",
            "What did I say I work as?",
            "What do I work as?",
            "Tell me my job.",
            "What work do I do?",
            "Remind me, what is my job?",
            "What is my profession?",
        ],
        "reply": ["You work as a {v}.", "Your job is {v}.", "You told me you are a {v}."],
    },
    "pet": {
        "state": [
            "I have a {pet} named {v}.",
            "My {pet} is called {v}.",
            "At home I have a little {pet}, {v}.",
            "My pet {pet}'s name is {v}.",
            "I adopted a {pet} and named it {v}.",
            "I own a {pet} called {v}.",
            "{v} is the name of my {pet}.",
            "My {pet}? Its name is {v}.",
            "We have a {pet} at home named {v}.",
            "There is a {pet} in my house, and its name is {v}.",
        ],
        "ack": ["{v} is a sweet name for a {pet}.", "Aww, say hi to {v} for me.", "A {pet} called {v}, how lovely."],
        "ask": [
            "What is my pet's name?",
            "What is my {pet} called?",
            "Do you remember my {pet}'s name?",
            "What did I name my {pet}?",
            "What's the name of my {pet}?",
            "What did I call my pet?",
            "Tell me my {pet}'s name.",
            "Remind me, what is my pet called?",
            "Tell me the name of my pet.",
        ],
        "reply": ["Your {pet} is called {v}.", "Your pet's name is {v}.", "You named your {pet} {v}."],
    },
    "colour": {
        "state": [
            "My favourite colour is {v}.",
            "I really love the colour {v}.",
            "If I had to pick a colour, it would be {v}.",
            "The colour I like best is {v}.",
            "Most of my clothes are {v}, it's my favourite colour.",
            "I like {v} more than any other colour.",
            "The colour {v} is my favourite.",
            "My best colour is {v}.",
            "I love wearing {v}, it's the colour I like most.",
            "No colour beats {v} for me.",
        ],
        "ack": ["{v} is a beautiful colour.", "Nice choice, {v} is lovely.", "Noted: your favourite colour is {v}."],
        "ask": [
            "What is my favourite colour?",
            "Which colour do I like best?",
            "Do you remember my favourite colour?",
            "What colour did I say I love?",
            "Tell me my favourite colour.",
            "What colour do I like most?",
            "Which colour did I say I love?",
            "Remind me, what is my favourite colour?",
            "Which colour is my favourite?",
        ],
        "reply": ["Your favourite colour is {v}.", "You like {v} best.", "You told me you love {v}."],
    },
    "food": {
        "state": [
            "My favourite food is {v}.",
            "I could eat {v} every day.",
            "Nothing makes me happier than {v}.",
            "If I could only eat one dish, it would be {v}.",
            "I always order {v} when I eat out.",
            "I love eating {v}.",
            "My favourite dish is {v}.",
            "I'd choose {v} over any other food.",
            "For dinner I always want {v}.",
            "The food I love most is {v}.",
        ],
        "ack": ["Mmm, {v} is delicious.", "Good taste, {v} is great.", "Noted, you love {v}."],
        "ask": [
            "What is my favourite food?",
            "What food do I love most?",
            "Do you remember my favourite dish?",
            "What did I say I could eat every day?",
            "Tell me my favourite food.",
            "What dish do I love most?",
            "Which food did I say I love?",
            "Remind me, what is my favourite food?",
            "Which food is my favourite?",
        ],
        "reply": ["Your favourite food is {v}.", "You love {v}.", "You told me your favourite food is {v}."],
    },
    "age": {
        "state": [
            "I am {v} years old.",
            "I just turned {v}.",
            "My age is {v}.",
            "I'm {v}, if you were wondering.",
            "Next week I will still be {v} years old.",
            "I'm {v} years old.",
            "I turned {v} this year.",
            "My age? I'm {v}.",
            "I am {v}, that is my age.",
            "I have been alive for {v} years now.",
        ],
        "ack": ["{v} is a great age.", "Thanks, so you are {v}.", "Got it, {v} years old."],
        "ask": [
            "How old am I?",
            "What is my age?",
            "Do you remember how old I am?",
            "What age did I tell you?",
            "Tell me how old I am.",
            "What age am I?",
            "Do you know how old I am?",
            "Remind me, how old am I?",
            "Tell me my age, please.",
        ],
        "reply": ["You are {v} years old.", "Your age is {v}.", "You told me you are {v}."],
    },
    "number": {
        "state": [
            "My {thing} number is {v}.",
            "I'm in {thing} {v}.",
            "Remember this: my {thing} is number {v}.",
            "The number of my {thing} is {v}.",
            "I always forget it, but my {thing} number is {v}.",
            "My {thing} is number {v}.",
            "I live in {thing} {v}.",
            "Please note my {thing} number: {v}.",
            "The {thing} I use is number {v}.",
            "You can find me in {thing} {v}.",
        ],
        "ack": ["{thing} {v}, got it.", "I will remember {thing} number {v}.", "Noted, your {thing} is {v}."],
        "ask": [
            "What is my {thing} number?",
            "Which {thing} am I in?",
            "Do you remember my {thing} number?",
            "What number did I say my {thing} was?",
            "What number is my {thing}?",
            "Which {thing} number is mine?",
            "Remind me, what is my {thing} number?",
            "What {thing} number did I give you?",
            "Tell me my {thing} number.",
        ],
        "reply": ["Your {thing} number is {v}.", "You are in {thing} {v}.", "You told me your {thing} is {v}."],
    },
}

SMALL_TALK = [
    ("How are you today?", ["I'm doing well, thank you for asking!", "Very well, thanks. How about you?"]),
    ("The weather is nice today.", ["That's great, enjoy the sunshine!", "Lovely weather makes everything better."]),
    ("It is raining a lot here.", ["Stay dry and maybe have a warm drink.", "Rainy days are good for reading."]),
    ("I had a long day at work.", ["Sorry to hear that, I hope you can rest now.", "Long days are tiring, take it easy."]),
    ("Can you recommend a good book?", ["You might enjoy a classic mystery novel.", "Try a book of short stories."]),
    ("I went for a walk this morning.", ["Walks are a great way to start the day.", "That sounds refreshing!"]),
    ("What do you think about music?", ["Music is wonderful, it lifts the mood.", "I think music makes life richer."]),
    ("I'm a bit tired.", ["Maybe a short break would help.", "Rest is important, be kind to yourself."]),
    ("Tell me a fun fact.", ["Octopuses have three hearts.", "Honey never spoils if it is stored well."]),
    ("I watched a great movie yesterday.", ["Nice, movies are a good way to relax.", "That sounds like a fun evening."]),
    ("Do you like coffee?", ["Many people love coffee in the morning.", "Coffee is a popular way to wake up."]),
    ("I'm planning a trip.", ["How exciting, I hope it goes well!", "Trips are fun to plan."]),
    ("Thanks for chatting with me.", ["You're welcome, I enjoy our chat.", "Any time, it is a pleasure."]),
    ("I started learning to cook.", ["Cooking is a great skill to learn.", "Have fun in the kitchen!"]),
    ("My weekend was busy.", ["Busy weekends can be fun too.", "I hope you still had some time to relax."]),
    ("What should I do this evening?", ["Maybe read a book or call a friend.", "A quiet evening at home sounds nice."]),
    ("I like playing chess.", ["Chess is a great game for the mind.", "Chess can be very relaxing."]),
    ("It's so cold outside.", ["Wear a warm coat and stay cosy.", "A hot drink would help."]),
    ("I'm learning a new language.", ["That's wonderful, practice a little every day.", "Good luck, it is worth it."]),
    ("Do you have any tips for sleeping better?", ["Try to go to bed at the same time every night.", "Less screen time before bed helps."]),
    ("I just finished a puzzle.", ["Well done, puzzles take patience.", "Nice work!"]),
    ("My friend visited me today.", ["That's lovely, friends are important.", "I hope you had a nice time together."]),
    ("I'm thinking about taking up running.", ["Start slowly and build up over time.", "Running is great exercise."]),
    ("What is a good hobby?", ["Painting, gardening or hiking are all good choices.", "Many people enjoy drawing."]),
    ("The train was late again.", ["That is annoying, I hope you were not late.", "Delays are frustrating."]),
    ("I baked some bread.", ["Fresh bread smells wonderful.", "Homemade bread is the best."]),
    ("Okay, let's keep talking.", ["Sure, I'm happy to chat.", "Of course, what is on your mind?"]),
    ("I need some motivation.", ["You can do it, one step at a time.", "Small steps add up to big results."]),
]

_PLACEHOLDER = re.compile(r"\{(v|pet|thing)\}")


def _fill(template, fact):
    return _PLACEHOLDER.sub(lambda m: fact[m.group(1)], template)


def _capitalise_first(text):
    return text[:1].upper() + text[1:]


def _phrasings(options, split):
    """All but the last phrasing outside test; test draws from all of them, the held-out one included."""
    return options if split == "test" else options[:-1]


def _pick_phrasing(rng, options, split):
    # test uses its held-out phrasing half of the time, so every test set of a few records contains it
    if split == "test" and rng.random() < 0.5:
        return options[-1]
    return rng.choice(_phrasings(options, split))


def _whole_word(word, text):
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE) is not None


def _make_record(rng, split, pools):
    turns = rng.randint(MIN_TURNS, MAX_TURNS)
    n_facts = rng.randint(2, min(4, turns - 1))
    kinds = rng.sample(sorted(KINDS), n_facts)
    asked = kinds[0]
    # the asked fact goes at least MIN_GAP turns before the question (index `turns`)
    asked_at = rng.randint(0, turns - MIN_GAP)
    others = rng.sample([i for i in range(turns) if i != asked_at], n_facts - 1)
    where = dict(zip([asked_at] + others, kinds))
    facts = {}
    used = set()
    for kind in kinds:
        value = _draw_value(rng, pools[kind], used)
        used.add(value.lower())
        facts[kind] = {"v": value, "pet": rng.choice(PET_KINDS), "thing": rng.choice(NUMBER_THINGS)}
    talk = rng.sample(SMALL_TALK, turns)
    history = []
    for i in range(turns):
        if i in where:
            spec, fact = KINDS[where[i]], facts[where[i]]
            user = _fill(_pick_phrasing(rng, spec["state"], split), fact)
            assistant = _capitalise_first(_fill(rng.choice(spec["ack"]), fact))
        else:
            user, replies = talk[i]
            assistant = rng.choice(replies)
        history.append({"user": user, "assistant": assistant})
    spec, fact = KINDS[asked], facts[asked]
    question = _fill(_pick_phrasing(rng, spec["ask"], split), fact)
    reply = _fill(rng.choice(spec["reply"]), fact)
    return {"history": history, "question": question, "answer": fact["v"], "kind": asked, "reply": reply}


def _valid(record):
    """The answer occurs (whole word) in the user turns only where it is stated, at least MIN_GAP turns back."""
    hits = [i for i, t in enumerate(record["history"]) if _whole_word(record["answer"], t["user"])]
    return len(hits) == 1 and len(record["history"]) - hits[0] >= MIN_GAP and not _whole_word(
        record["answer"], record["question"]
    )


def generate(split, seed, count):
    """`count` records of `split`, deterministic for (split, seed, count); each has kind and reply too."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    rng = random.Random(f"{split}:{seed}")
    pools = value_pools(split)
    records = []
    while len(records) < count:
        record = _make_record(rng, split, pools)
        if _valid(record):
            records.append(record)
    return records


def public(record):
    """The record as the CLI writes it: history, question and answer only."""
    return {"history": record["history"], "question": record["question"], "answer": record["answer"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate recall chats as JSONL.")
    parser.add_argument("--split", required=True, choices=SPLITS)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True, help="output .jsonl path ('-' for stdout)")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must be >= 0")
    lines = "".join(json.dumps(public(r)) + "\n" for r in generate(args.split, args.seed, args.count))
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(lines)


if __name__ == "__main__":
    main()
