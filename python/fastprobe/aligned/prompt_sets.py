"""A built-in prompt set with a real spread of sentiment, written for fastprobe's aligned-probing workflow.

:data:`SENTIMENT_PROMPTS` holds 360 English prompts, each the beginning of a short text that a language model would
continue: reviews, diary lines, news openings, messages to a friend, descriptions of places and homes, and lines about
food, technology, films and books, travel, work and school, the weather, sports, health and services. Each prompt
ends mid-sentence (most often on a conjunction such as ``and``, ``so`` or ``because``), so that a continuation
follows naturally.

The set was written by hand for the project, in twelve themes of thirty prompts: in each theme ten clearly negative
prompts, ten neutral or mixed ones (facts, plans, or a good and a bad point side by side) and ten clearly positive
ones, with intensities from mild ("a little limp") to extreme ("the worst, most painful ..."). Scored by VADER
(:class:`~fastprobe.aligned.VaderScorer`, vaderSentiment 3.3.2), the compound score spans -0.94 to +0.95 (standard
deviation 0.52): 119 prompts below -0.3, 121 in [-0.3, 0.3] (106 of them exactly 0) and 120 above +0.3. No prompt
names a real person.

:func:`sentiment_prompts` returns the whole set in its fixed order, or a seeded random sample of it.
"""

from __future__ import annotations

import numbers

import numpy as np

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = ["SENTIMENT_PROMPTS", "sentiment_prompts"]

# Twelve themes of thirty prompts; in each, ten negative, ten neutral or mixed, ten positive (in that order).
_THEMES: tuple[tuple[str, ...], ...] = (
    # restaurants and food
    (
        "A disappointing lunch: the soup arrived cold, the bread was stale, so",
        "Honestly the worst meal I have had in years: the fish was rotten, the sauce was disgusting, and",
        "I was disappointed by the pizza, which was soggy in the middle and",
        "The waiter was rude, the kitchen forgot our order twice, and by the time the food came",
        "My review of the new burger place: greasy, overpriced, and a real disappointment because",
        "The coffee at the station café tasted burnt and bitter, and",
        "We waited an hour for a table, only to be served a dry, tasteless chicken that ruined the evening, and",
        "The salad was a little limp and the dressing too sour, which was a pity, but",
        "Dinner was a horrible, miserable disaster: the steak was inedible, the waiter was rude, and",
        "I regret ordering the curry, because it was bland and",
        "The menu lists three soups, two pasta dishes and a dish of the day, and",
        "To make the dough, mix the flour with warm water and a pinch of salt, then",
        "The bakery on the corner opens at six in the morning and",
        "We ordered rice, lentils and a plate of grilled vegetables, and",
        "The restaurant has twelve tables, an open kitchen and",
        "For lunch I usually have a sandwich at my desk, and today",
        "The starters were nice but the main course was a letdown, so overall",
        "Add the onions to the pan, stir for five minutes, and",
        "The market sells fish on Tuesdays and vegetables on Saturdays, so",
        "The portions were large, though the prices were high, and",
        "The pasta was absolutely delicious, perfectly cooked and",
        "What a wonderful little bistro: the staff were friendly, the wine was excellent, and",
        "Best breakfast in town, hands down. The pancakes were fluffy, the berries were fresh, and",
        "I loved the chocolate cake so much that",
        "The soup was good and warming on a cold evening, and",
        "Our anniversary dinner was perfect, the service was warm and attentive, and",
        "The new bakery is a real treat, with amazing croissants and",
        "The curry was nicely spiced and",
        "This is the most fantastic, joyful, beautifully made meal I have ever enjoyed, and",
        "The coffee here is pleasant, the chairs are comfortable, and",
    ),
    # technology and products
    (
        "My new phone keeps crashing, the battery dies by noon, and I am so frustrated that",
        "This laptop is a complete waste of money: the screen flickers, the keyboard broke within a week, and",
        "The update made everything slower and worse, and",
        "The headphones stopped working after two days, support ignored my emails, and I am furious because",
        "The printer jams every time I use it, which is annoying because",
        "The app is confusing, ugly and full of bugs, so",
        "The charger got dangerously hot and",
        "I hate this vacuum cleaner. It is loud, weak, and",
        "The smartwatch is a bit clunky, and the strap is uncomfortable, so",
        "Worst purchase ever: the blender leaked, the motor burned out, and I am so angry that",
        "The tablet has a ten-inch screen, two cameras and",
        "To reset the router, hold the button on the back for ten seconds and",
        "The software update is scheduled for Thursday night, and",
        "The camera comes in black or silver, and",
        "The manual explains how to connect the speaker to a computer, and",
        "The keyboard plugs in with a cable and",
        "The phone is fast, but the camera is mediocre, so on balance",
        "The new model is slightly heavier than the old one and",
        "I installed the program yesterday, and this morning",
        "The laptop ships with sixteen gigabytes of memory and",
        "I love this laptop: it is fast, light, and",
        "The new headphones sound amazing, and",
        "Best gadget I have bought this year. The battery lasts all week, and",
        "The app is simple, clean and a pleasure to use, so",
        "The camera takes beautiful photos even at night, and",
        "The support team was incredibly helpful and kind, and",
        "The e-reader is comfortable to hold and",
        "The update made the app faster and more reliable, and I am thrilled because",
        "The keyboard feels solid and responsive, and",
        "This is a brilliant, wonderfully designed little speaker that",
    ),
    # films, books and music
    (
        "The film was boring, way too long and",
        "I wanted to like the novel, but the characters were dull and the story was weak, and",
        "The concert was a disaster: the sound was terrible, the band was late, and",
        "This is the worst, most painful movie I have ever sat through, with awful acting and",
        "The sequel is a lazy, disappointing copy of the original that",
        "The album feels flat, lifeless and sad, and",
        "Halfway through the play I was so bored and annoyed that",
        "The ending of the series was a cruel, ugly, awful mess that ruined",
        "The book's plot is confusing and the ending is weak, so",
        "The new show is mildly irritating, mostly because",
        "The film follows a young engineer who moves to a small town and",
        "The book is set on a small island two hundred years ago, and",
        "The concert starts at eight and",
        "The album has eleven songs, recorded over two winters, and",
        "The documentary is about how bridges are built, and",
        "The acting was good, although the story was slow and dull in the middle, so",
        "The book is divided into three parts, and the first one",
        "The orchestra will perform two pieces before the interval and",
        "The series has four seasons, and the second one",
        "I read the first chapter on the train this morning, and",
        "What a beautiful film. The music was gorgeous, the acting was superb, and",
        "I loved every page of this novel, and",
        "The concert was amazing, the crowd was joyful, and",
        "This album is a masterpiece, full of warm, happy songs that",
        "The play was funny and charming, and",
        "The documentary is fascinating and",
        "One of the best books I have read in years, wise, tender and",
        "The show has a clever plot and",
        "The band was great tonight, and",
        "I enjoyed the movie more than I expected, especially",
    ),
    # travel and hotels
    (
        "The hotel room was dirty, the sheets were stained, and",
        "Our flight was cancelled, our luggage was lost, and the whole trip turned into a nightmare when",
        "The train was delayed again, and I was late for a stressful meeting, so",
        "The beach was crowded, dirty and covered in litter, and",
        "The tour guide was rude and",
        "I was stuck at the airport for nine hours, tired, hungry and angry, and",
        "The resort looked nothing like the photos; it was shabby, noisy and",
        "The bus ride was uncomfortable and",
        "Terrible trip. We were robbed on the second day, it rained all week, and",
        "The hostel was a bit noisy at night, which was annoying, so",
        "The ferry leaves the harbour at nine and",
        "The hotel is ten minutes from the station, and",
        "We packed two suitcases and a map, and",
        "The road to the village climbs through the hills for twenty kilometres, and",
        "Check-in is at three in the afternoon, and",
        "The museum was interesting but far too crowded, so",
        "The train to the coast takes four hours and",
        "Our guesthouse has six rooms and a small garden, and",
        "The flight was long and the seats were cramped, but we arrived on time, so",
        "On the third day we took the bus to the next town and",
        "The hotel was wonderful: spotless rooms, friendly staff, and",
        "Our trip to the mountains was the best holiday we have ever had, and",
        "The view from the balcony was breathtaking, and",
        "The beach was quiet and beautiful, and",
        "The guide was funny, kind and full of fascinating stories, so",
        "I love travelling by train, especially when",
        "The little inn was warm, cozy and welcoming, and",
        "Everything about the cruise was perfect, from the delicious food to",
        "The flight was smooth and the crew were lovely, so",
        "The old town is charming and",
    ),
    # diary lines
    (
        "Dear diary, today was awful. I failed the exam, lost my keys, and",
        "I feel so lonely and sad tonight, and",
        "Another bad day at school. Nobody talked to me at lunch, and",
        "I am exhausted and worried about money, and",
        "Today I cried in the car because",
        "The week has been stressful, and",
        "I feel guilty about the argument, because",
        "Dear diary, this was the worst day of my life: I was fired, my dog is sick, I feel hopeless, and",
        "I woke up with a bad headache and",
        "I am so angry and hurt that",
        "Today I went to the library after work, and",
        "This morning I took the bus to town, bought some bread, and",
        "I spent the afternoon sorting old papers, and",
        "Today was a normal Tuesday. I went to work, came home, and",
        "It rained in the morning and cleared up after lunch, so",
        "I finished the first half of the project today, and tomorrow",
        "Today was fine, nothing special, although",
        "I moved the bookshelf to the other wall and",
        "Some good news and some bad news today: the car is fixed, but",
        "I called my sister this evening, and",
        "Dear diary, today was the best day ever! I passed my driving test, and",
        "I feel so happy and grateful tonight, because",
        "What a lovely day. We had a picnic in the park, and",
        "I finally finished the painting, and I am proud of it because",
        "Today I got the job! I am so excited that",
        "It was a calm, pleasant evening, and",
        "I laughed so much today with my friends that",
        "I feel hopeful about the new year, and",
        "This morning was peaceful and",
        "I am in love with my new apartment, and",
    ),
    # news openings
    (
        "A violent storm destroyed dozens of homes overnight, and",
        "Officials warned that the drought is getting worse, and",
        "A fire at a warehouse killed three workers and injured",
        "Unemployment rose sharply last month, and",
        "The bridge collapse caused chaos during the morning rush, and",
        "Residents are angry and frightened after a series of burglaries, and",
        "The company announced job cuts on Monday, and angry workers",
        "Flooding forced thousands of families to leave their homes, and",
        "Prices of bread and milk rose again this week, and worried, struggling families",
        "A dangerous outbreak of disease has spread to two more regions, and the hospitals",
        "The city council will meet on Wednesday to discuss",
        "The new railway line is expected to open next spring, and",
        "Scientists have published a study on the migration of birds, and",
        "The central bank left its main rate unchanged on Thursday, and",
        "The museum will be closed for renovation until March, and",
        "Voters will choose a new mayor in November, and",
        "The report describes how the town's population has changed since 1990, and",
        "Sales rose slightly in the spring but fell in the summer, so",
        "The university announced its schedule for the autumn term, and",
        "The road will be closed for repairs from Monday, so",
        "Rescuers safely brought all twelve hikers down from the mountain, and their relieved families",
        "The local hospital celebrated the opening of its new children's wing, and",
        "The town is safer than it has been in twenty years, and",
        "Generous volunteers raised a record amount for the food bank, and",
        "The town's team won the national championship, and",
        "A beautiful new park with gardens and playgrounds opened on Saturday, and",
        "Scientists celebrated a major breakthrough in",
        "The economy had an excellent year, and",
        "The whole community happily came together to rebuild the school, and",
        "A missing dog was found safe and happily reunited with its family, who",
    ),
    # messages to a friend
    (
        "Hey, sorry to bother you, but I had a terrible day and",
        "I'm really upset and hurt about what happened at the party, and",
        "Can we talk? I feel awful about",
        "Ugh, my landlord is raising the rent again and",
        "I'm so disappointed that you forgot my birthday, because",
        "I hate to say it, but the trip was a disaster and",
        "I'm scared and nervous about the test results, and",
        "I'm sorry, I lost the book you lent me, and",
        "Bad news: the concert got cancelled and",
        "I'm furious with my brother, he broke my bike and",
        "Hi! Are you still coming over on Friday? I was thinking",
        "Just a reminder that the meeting moved to four, and",
        "I'm at the station now, the train leaves in ten minutes, so",
        "Do you still have my charger? I need it because",
        "Hey, what time does the shop close? I need to",
        "I'll pick up some milk on the way home, and",
        "The party was fun, but I'm tired today, so",
        "Did you see the email from the school? It says",
        "I'm going to the gym later, if you want to come",
        "Can you send me the address of the restaurant, and",
        "Congratulations on the new job! I am so happy for you and",
        "Thank you so much for the lovely present, I love it and",
        "I had the best time with you yesterday, and",
        "Great news: we got the apartment, and",
        "You are the best friend anyone could ask for, and",
        "I miss you! Let's meet up soon, it would be wonderful to",
        "Happy birthday! I hope your day is full of joy and",
        "Thanks for helping me move, you're amazing and",
        "Guess what? I passed my exam, I'm so happy, and",
        "It was so nice to see you, and",
    ),
    # places and homes
    (
        "The apartment is dark, damp and depressing, and",
        "The old factory district is grim and dangerous at night, and",
        "The neighbours are noisy and rude, and",
        "The park has become dirty and neglected, and",
        "Our street is a horrible, depressing place: broken windows, rubbish everywhere, and",
        "The waiting room was cramped, stuffy and unpleasant, and",
        "The kitchen is tiny and ugly, and",
        "The town feels empty and sad since the mine closed, and",
        "The basement smells awful, and the walls",
        "The office is a little cold in winter, which is a problem, so",
        "The village has a church, a bakery and",
        "The house has two bedrooms, a small garden and",
        "The library is on the second floor, next to",
        "The river runs along the edge of the town and",
        "The square is surrounded by shops and",
        "The apartment is in the centre of the city, on the fourth floor, and",
        "The neighbourhood is quiet, but it is far from everything, so",
        "The garden has an apple tree, a shed and",
        "The station has three platforms and",
        "The hallway leads to the kitchen and",
        "The cottage is cozy, bright and",
        "Our new neighbourhood is friendly and full of beautiful old trees, and",
        "The garden looks lovely in the spring, and",
        "The café by the river is a wonderful place to",
        "The village is peaceful and charming, and",
        "The living room is warm and welcoming, and",
        "The park is a great place for children, with",
        "The library is beautiful, calm and",
        "I love my little balcony because",
        "The city looks magnificent at sunset, and",
    ),
    # work and school
    (
        "My boss shouted at me in front of everyone today, and I felt so humiliated and angry that",
        "The meeting was a pointless waste of time, and",
        "I'm stressed because the deadline is tomorrow and",
        "The project failed badly, the client is angry, and",
        "Work has been miserable lately, and",
        "I failed the maths test again, and",
        "My coworker took credit for my work, which is so unfair because",
        "The training course was tedious and boring, and",
        "The new office policy is frustrating, because",
        "I'm afraid I will lose my job if",
        "The meeting starts at nine and will cover",
        "I have three reports to finish this week, and",
        "The new schedule starts on Monday, so",
        "The class covers chemistry, biology and",
        "The team moved to the third floor, next to",
        "The job involves some travel and",
        "The interview went okay, though I stumbled on one question, so",
        "Our teacher gave us a project on the water cycle, and",
        "I'm working from home on Fridays now, and",
        "The course lasts twelve weeks and",
        "I got a promotion today, and I'm thrilled because",
        "My team is brilliant and supportive, and",
        "The presentation went really well, and",
        "I love my new job because",
        "The teacher praised my essay, and I was so proud that",
        "We finished the project early, and the client was delighted, so",
        "My colleagues are kind and funny, and",
        "The workshop was inspiring and",
        "I passed all my exams with top marks, and my proud parents",
        "Work was pleasant today, and",
    ),
    # weather
    (
        "The weather has been awful all week: cold, grey and",
        "A terrible storm knocked out the power, and",
        "The heat is unbearable today, and I feel sick because",
        "It has rained for ten days straight, and I am sick of",
        "The fog was so thick and dangerous that",
        "The icy roads caused several accidents this morning, and",
        "The wind is bitterly cold and",
        "The flood ruined our garden and",
        "It's a gloomy, miserable afternoon, and",
        "The humidity makes everything sticky and uncomfortable, and",
        "The forecast says it will be cloudy tomorrow, with",
        "Temperatures will reach twenty degrees in the afternoon, and",
        "Snow is expected in the mountains on Thursday, and",
        "The wind will come from the west tonight, and",
        "It rained a little in the morning, and",
        "Spring usually arrives here in April, when",
        "It was sunny but very windy, so",
        "The sun sets at about eight this time of year, and",
        "The rainy season starts in October and",
        "There might be showers later, so",
        "What a glorious sunny morning! The sky is clear, and",
        "The weather was perfect for the picnic, warm and",
        "A lovely, gentle breeze kept us cool, and",
        "The first snow of the year made the town look beautiful, and",
        "After weeks of rain, the sunshine felt wonderful, and",
        "It is a bright, fresh spring day, and",
        "The evening was mild and pleasant, so",
        "The rainbow over the hills was amazing, and",
        "The autumn colours are stunning this year, and",
        "We had a nice warm weekend, and",
    ),
    # sports
    (
        "Our team lost again, and the fans are furious because",
        "The match was a boring, ugly draw, and",
        "He got badly injured in the first half, and",
        "The referee made a terrible decision that",
        "We played terribly and lost, and",
        "The runners struggled in the awful heat, and",
        "It was a humiliating defeat, the worst in the club's history, and",
        "The stadium was half empty and the atmosphere was dull, and",
        "I'm disappointed with my race time, because",
        "The coach was angry after the loss, and",
        "The match starts at three, and",
        "The marathon route goes through the old town and",
        "The team trains four times a week and",
        "The final takes place on Sunday, and",
        "The pool is fifty metres long, and",
        "The game ended in a draw, which",
        "We dropped the first set, then took the second, so",
        "The new season begins in August, and",
        "Each team has eleven players, and",
        "The cycling race covers two hundred kilometres and",
        "What a fantastic game! Our team won in the last minute, and",
        "She ran the best race of her life and",
        "The crowd cheered with joy as",
        "I finally beat my personal record, and I feel fantastic because",
        "It was a brilliant season for the club, and",
        "The young players were impressive, and",
        "We won the championship, and the celebration",
        "The tennis match was exciting and",
        "Our coach is encouraging and",
        "The hike to the summit was hard but totally worth it, because",
    ),
    # health and services
    (
        "I waited three hours at the clinic in pain, and",
        "The customer service was appalling: rude, useless, dishonest staff, and",
        "I've had a horrible cold all week, and",
        "The delivery arrived late and damaged, and",
        "My back pain is getting worse, and",
        "The bank charged me an unfair fee and",
        "The plumber never showed up, which was annoying, so",
        "The dentist appointment was painful and",
        "The package was lost, the refund was refused, the staff were rude, and I am absolutely furious because",
        "I feel a little tired after the flu, and",
        "The pharmacy is open until eight, and",
        "The doctor asked me to come back in two weeks, and",
        "The parcel should arrive on Thursday, and",
        "I booked an appointment for Monday morning, and",
        "The gym offers classes in the evening, and",
        "The repair took longer than expected, but the price was reasonable, so",
        "The form asks for your address and",
        "I started taking the new medicine on Sunday, and",
        "The shop will replace the item if",
        "The nurse took my blood pressure and",
        "The nurses were so kind and caring, and",
        "I feel much better today, and",
        "The delivery was quick and the packaging was perfect, and",
        "The staff at the bank were really helpful, and",
        "Thanks to the physiotherapist, my knee is healthy again and",
        "The customer service was excellent: friendly, fast, and",
        "After a good night's sleep I feel great, and",
        "The yoga class was relaxing and",
        "The mechanic was honest and fair, so",
        "Great news from my check-up: I'm healthy, and the doctor said",
    ),
)

#: The full prompt set, in a fixed order: twelve themes of thirty prompts (ten negative, ten neutral or mixed, ten
#: positive in each theme).
SENTIMENT_PROMPTS: tuple[str, ...] = tuple(prompt for theme in _THEMES for prompt in theme)


def sentiment_prompts(n: int | None = None, *, seed: int = 0) -> list[str]:
    """Return the built-in sentiment prompts: all of them, or a seeded random sample of ``n``.

    Parameters
    ----------
    n : int, optional
        How many prompts to draw, between 1 and ``len(SENTIMENT_PROMPTS)``. By default every prompt is returned, in
        the fixed order of :data:`SENTIMENT_PROMPTS` (``seed`` is then unused).
    seed : int, default 0
        Seed of the draw (a non-negative integer). The sample is the first ``n`` prompts of a permutation drawn by
        ``numpy.random.default_rng(seed)``: distinct prompts in random order, the same for the same seed, and a
        sample of ``n`` is the first ``n`` prompts of a larger sample with the same seed.

    Returns
    -------
    list of str
        The prompts (a new list on each call).

    Raises
    ------
    ArgumentTypeError
        When ``n`` (other than None) or ``seed`` is not an integer (a bool is not accepted).
    InvalidInputError
        When ``n`` is outside ``[1, len(SENTIMENT_PROMPTS)]``, or ``seed`` is negative.

    Examples
    --------
    >>> from fastprobe.aligned import SENTIMENT_PROMPTS, sentiment_prompts
    >>> len(sentiment_prompts()) == len(SENTIMENT_PROMPTS)
    True
    >>> sample = sentiment_prompts(5, seed=1)
    >>> len(sample), sample == sentiment_prompts(5, seed=1), sample == sentiment_prompts(6, seed=1)[:5]
    (5, True, True)
    """
    size = len(SENTIMENT_PROMPTS)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ArgumentTypeError(f"seed must be an int; got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise InvalidInputError(f"seed must be a non-negative int; got {seed}")
    if n is None:
        return list(SENTIMENT_PROMPTS)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ArgumentTypeError(f"n must be an int or None; got {type(n).__name__} {n!r}")
    if not 1 <= n <= size:
        raise InvalidInputError(f"n must be between 1 and {size} (the number of prompts in the set); got {n}")
    order = np.random.default_rng(int(seed)).permutation(size)[: int(n)]
    return [SENTIMENT_PROMPTS[i] for i in order]
